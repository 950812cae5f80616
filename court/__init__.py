"""Documents for court: deposit certificates (存证证书), the evidence catalog (证据目录) and
court packages, made from verified bundles.

Sits between the server and the verifier: ``api`` → ``court`` → ``verifier`` → ``ledger``.
Nothing here imports ``api`` or a storage backend; the package *verifier* is
:mod:`verifier.package`, which needs nothing from here.
"""
