"""Messages to patients: what a sender needs (a Protocol), the email sender and the calendar file."""
