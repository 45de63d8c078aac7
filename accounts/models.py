# The accounts app keeps no models of its own: users, groups and sessions are Django's
# (django.contrib.auth, django.contrib.sessions). Its migrations remove what an earlier
# version kept here (accounts/migrations/0004).
