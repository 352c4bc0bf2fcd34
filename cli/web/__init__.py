"""``tlreg ui``: a read-only web page of the audit trail, served from the registry database.

:mod:`.app` builds the Starlette application (headers, errors, templates), :mod:`.pages` holds one
function per page, each a call into :mod:`tlreg.advisor.audit.browse` laid out by a Jinja template
in ``templates/``. Starlette, Jinja2 and uvicorn come with the optional extra ``tlreg[ui]`` and are
imported only here, so the rest of tlreg never needs them.
"""
