// The patient's second peer connection: the camera, as the camera sees it, to the server's recorder.
import { api } from "./api.js";

const MAX_KBPS = 4000;

function preferVp8(transceiver) {
  if (!RTCRtpSender.getCapabilities || !transceiver.setCodecPreferences) return;
  const caps = RTCRtpSender.getCapabilities("video");
  // The server stores the encoded stream without re-encoding, and it stores VP8.
  const vp8 = caps.codecs.filter((c) => /vp8/i.test(c.mimeType));
  const rest = caps.codecs.filter((c) => /rtx|red|ulpfec/i.test(c.mimeType));
  if (vp8.length) transceiver.setCodecPreferences([...vp8, ...rest]);
}

function gatheringComplete(pc, timeoutMs) {
  // The server does not trickle; send one offer with every candidate we have.
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, timeoutMs);
  });
}

export async function openServerPeer(visitId, stream, iceServers, iceTransportPolicy = "all") {
  const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy, bundlePolicy: "max-bundle" });
  const track = stream.getVideoTracks()[0];
  const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
  preferVp8(transceiver);
  await pc.setLocalDescription(await pc.createOffer());
  await gatheringComplete(pc, 3000);
  const answer = await api("POST", `/api/visits/${visitId}/capture/peer`, { sdp: pc.localDescription.sdp });
  await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  const params = transceiver.sender.getParameters();
  if (!params.encodings || !params.encodings.length) params.encodings = [{}];
  params.encodings[0].maxBitrate = MAX_KBPS * 1000;
  params.degradationPreference = "maintain-resolution";
  await transceiver.sender.setParameters(params).catch(() => {});
  return { pc, sender: transceiver.sender };
}
