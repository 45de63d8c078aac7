from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

DEMO_USERS = [
    # username, password, group, is_staff
    ("member", "member-demo-pass", "Members", False),
    ("reviewer", "reviewer-demo-pass", "Reviewers", False),
    ("admin", "admin-demo-pass", "Admins", True),
]


class Command(BaseCommand):
    help = "Create one demo user per role (for the embedded default set-up). Idempotent."

    def handle(self, *args, **options):
        User = get_user_model()
        for username, password, group_name, is_staff in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(password)
            user.is_staff = is_staff
            user.is_superuser = username == "admin"
            user.save()
            user.groups.add(Group.objects.get(name=group_name))
            self.stdout.write(f"  {group_name[:-1]:<9} {username} / {password}")
