"""The review page's frame viewer: the component (``component``), what it and the page tell each
other (``handshake``), and the local selection's embedding map that moves it (``embedding_map``)."""
