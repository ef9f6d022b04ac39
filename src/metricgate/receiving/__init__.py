"""The receiver skeleton every receiver runs its requests through (the Collector's receiverhelper).

`core` admits, consumes, counts and answers a request on any transport; `http` is its HTTP half;
`access` is a listener's authentication, tenant rights and limits; `compression` is bounded
decompression of request bodies.

Invariant: nothing here imports a receiver; the place where a capability (authentication, limits)
plugs in once for every receiver.
"""
