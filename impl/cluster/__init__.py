"""zot's cluster mode (``cluster{members, hashKey, tls}``): each repository belongs to one
member, chosen by SipHash of its name; a request that reaches another member is proxied to
the owner, and the catalog and GraphQL search fan out to every member and merge.

* :mod:`.hashing`: SipHash-2-4 and the owner of a repository, as zot computes them;
* :mod:`.settings`: the configuration section and its checks;
* :mod:`.members`: which member this instance is;
* :mod:`.forward`: the HTTP client between members and the streaming proxy;
* :mod:`.catalog`, :mod:`.search`: the fan-outs and their merges;
* :mod:`.middleware`: the ASGI layer that decides, per request, which of these applies.
"""
