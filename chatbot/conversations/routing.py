from django.urls import path

from chatbot.console.routing import websocket_urlpatterns as console_urlpatterns
from chatbot.conversations.consumers import ChatConsumer

websocket_urlpatterns = [path("ws/chat/", ChatConsumer.as_asgi()), *console_urlpatterns]
