"""A sample WSGI app for `gantry init`, served by gunicorn.

It needs nothing beyond Python's standard library; gunicorn comes from the
host (Debian's gunicorn package), not from requirements.txt.
"""


def hello(environ, start_response):
    """Answers every path with a greeting."""
    body = b"pyapp says hello\n"
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


# The WSGI application gunicorn serves (app:app).
app = hello
