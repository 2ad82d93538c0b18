"""The Verdicts page's review queue: the component (``component``, ``queue.js``) that shows the queued
frames and takes verdicts by key or click, and the route it posts them to (``routes``)."""
