"""gunicorn --chdir examples/host wsgi:app"""
from app import get_app

app = get_app()
