"""cunzheng's append-only ledger: an RFC 9162 Merkle log with deposit codes and chained checkpoints.

The pure core (``merkle``, ``tiles``, ``checkpoint``, ``entry``, ``code``, ``canonical``) does no
I/O; ``store``, ``storage``, ``log`` and ``sequencer`` add storage and the writer. Importing this
package loads no backend.
"""
