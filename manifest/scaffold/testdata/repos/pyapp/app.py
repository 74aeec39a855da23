"""A sample Flask app for `gantry init`, served by gunicorn."""
from flask import Flask

app = Flask(__name__)


@app.get("/")
def home():
    return "pyapp says hello\n"
