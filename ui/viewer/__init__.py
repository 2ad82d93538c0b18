"""The review page's frame viewer: the component (``component``) and what it and the page tell
each other (``handshake``)."""
