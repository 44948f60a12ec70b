"""The rules of the product, between the HTTP views (``telehealth/http``) and storage (``telehealth/records``).

Views parse a request, call one handler method and serialize its answer. Handlers hold the rules
(who may do what to which visit, in which state), open the database work through a
:class:`~telehealth.handlers.uow.UnitOfWork` that cannot commit without its audit event, and call
the ``records`` functions that read and write rows. ``records`` knows nothing about handlers.
"""
