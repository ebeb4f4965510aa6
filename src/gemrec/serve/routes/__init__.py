"""The HTTP API as routers, one module per area; ``create_app`` wires each with its access rule.

===============  ===================================================  ======
module           endpoints                                            access
===============  ===================================================  ======
events           ``POST /v1/events``                                  write
recommendations  ``GET /v1/users/{user_id}/recommendations``          read
items            ``GET /v1/items/{item_id}/similar``                  read
users            ``GET /v1/users/{user_id}/history``                  read
users (writes)   ``POST /v1/users``, ``POST /v1/users/batch``,        write
                 ``DELETE /v1/users/{user_id}``
explain          ``GET /v1/explain``                                  read
catalogue        ``POST /v1/items``, ``DELETE /v1/items/{item_id}``   write
operations       ``GET /healthz``, ``GET /metrics``                   open
admin            ``POST /v1/admin/reload``                            write
blocklist        ``GET /v1/admin/blocklist``,                         write
                 ``POST /v1/admin/blocklist``
===============  ===================================================  ======

Write routes need the API key when one is set; read routes only with ``protect_reads``.
"""
