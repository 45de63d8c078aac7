from . import audit


class AuditActorMiddleware:
    """Lets audit entries written by signals (role changes) name the person acting."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        token = audit.set_request_actor(user)
        try:
            return self.get_response(request)
        finally:
            audit.reset_request_actor(token)
