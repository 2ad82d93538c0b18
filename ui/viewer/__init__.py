"""The review page's frame viewer: the component (``component``), the routes it fetches frames and
boxes from (``frames``), what it and the page tell each other (``handshake``), and the local
selection's embedding map that moves it (``embedding_map``)."""
