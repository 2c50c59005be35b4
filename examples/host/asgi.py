"""uvicorn --app-dir examples/host asgi:app"""
from app import get_app

app = get_app(asgi=True)
