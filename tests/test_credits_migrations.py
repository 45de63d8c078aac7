"""The ledger's move from the generations app to credits, on a database with rows in it.

Each test migrates back to before the move, writes rows with the models of that
moment, migrates forward again and reads them through today's models. The
database is left at the latest migration.
"""

from decimal import Decimal

import pytest
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from credits.models import LedgerEntry, WalletSnapshot

BEFORE_THE_MOVE = [
    ("credits", "0005_filtered_most_expensive_indexes"),
    ("generations", "0007_web_speed_indexes"),
]


def _migrate(targets=None):
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps if targets else None


@pytest.fixture
def old_apps(transactional_db):
    """The models as they were before the move; the latest migration again afterwards."""
    try:
        yield _migrate(BEFORE_THE_MOVE)
    finally:
        _migrate()
        ContentType.objects.clear_cache()


def _old_permission(apps, app_label, codename):
    OldPermission = apps.get_model("auth", "Permission")
    return OldPermission.objects.get(content_type__app_label=app_label, codename=codename)


def _make_old_permissions(apps):
    """The generations app's permissions as the migrations of that moment made them."""
    config = apps.get_app_config("generations")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = None


def test_every_ledger_entry_and_wallet_snapshot_is_still_there_after_the_move(old_apps):
    OldUser = old_apps.get_model("auth", "User")
    OldGeneration = old_apps.get_model("generations", "Generation")
    OldEntry = old_apps.get_model("generations", "LedgerEntry")
    OldSnapshot = old_apps.get_model("generations", "WalletSnapshot")
    owner = OldUser.objects.create(username="ledger-owner")
    generation = OldGeneration.objects.create(
        owner=owner, provider="hunyuan_rapid", credit_estimate=35
    )
    written = [
        OldEntry.objects.create(kind=kind, user=owner, generation=generation, amount=amount)
        for kind, amount in [("hold", -35), ("release", 35), ("charge", -35), ("refund", 35)]
    ]
    written.append(OldEntry.objects.create(kind="adjustment", user=owner, amount=-7, note="fix"))
    snapshots = [
        OldSnapshot.objects.create(balance=Decimal("120.50"), rate_limit=3),
        OldSnapshot.objects.create(balance=Decimal("85.50")),
    ]

    _migrate()

    entries = LedgerEntry.objects.filter(user_id=owner.pk)
    assert [(e.pk, e.kind, e.amount) for e in entries] == [
        (e.pk, e.kind, e.amount) for e in written
    ]
    assert entries.filter(generation_id=generation.pk).count() == 4
    assert entries.balance() == -7
    assert sorted(WalletSnapshot.objects.values_list("pk", "balance", "rate_limit")) == [
        (s.pk, s.balance, s.rate_limit) for s in snapshots
    ]
    # Still append-only in the database: the table kept its trigger.
    assert LedgerEntry._meta.db_table == "generations_ledgerentry"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'generations_ledgerentry'::regclass"
            " AND NOT tgisinternal"
        )
        assert ("credits_ledger_append_only",) in cursor.fetchall()


@pytest.mark.parametrize("new_labels_made_already", [False, True])
def test_every_grant_of_a_moved_permission_is_kept(old_apps, new_labels_made_already):
    _make_old_permissions(old_apps)
    OldGroup = old_apps.get_model("auth", "Group")
    OldUser = old_apps.get_model("auth", "User")
    view_spend = _old_permission(old_apps, "generations", "view_spend")
    view_ledger = _old_permission(old_apps, "generations", "view_ledgerentry")
    view_wallet = _old_permission(old_apps, "generations", "view_walletsnapshot")
    admins, _ = OldGroup.objects.get_or_create(name="Admins")
    admins.permissions.add(view_spend, view_ledger, view_wallet)
    auditors = OldGroup.objects.create(name="Auditors")
    auditors.permissions.add(view_ledger)
    accountant = OldUser.objects.create(username="accountant")
    accountant.user_permissions.add(view_spend, view_wallet)
    if new_labels_made_already:
        # ``migrate`` makes the new app's permissions after the state move, before this
        # data migration is run on another database: both labels exist at once.
        OldContentType = old_apps.get_model("contenttypes", "ContentType")
        OldPermission = old_apps.get_model("auth", "Permission")
        for model in ["ledgerentry", "walletsnapshot"]:
            made, _ = OldContentType.objects.get_or_create(app_label="credits", model=model)
            OldPermission.objects.get_or_create(
                content_type=made, codename=f"view_{model}", defaults={"name": model}
            )

    _migrate()

    def granted(group_name):
        group = Group.objects.get(name=group_name)
        return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}

    moved = {"credits.view_spend", "credits.view_ledgerentry", "credits.view_walletsnapshot"}
    assert moved <= granted("Admins")
    assert granted("Auditors") == {"credits.view_ledgerentry"}
    accountant = User.objects.get(username="accountant")
    assert accountant.has_perm("credits.view_spend")
    assert accountant.has_perm("credits.view_walletsnapshot")
    assert not accountant.has_perm("credits.view_ledgerentry")
    assert not Permission.objects.filter(
        content_type__app_label="generations",
        codename__in=["view_spend", "view_ledgerentry", "view_walletsnapshot"],
    ).exists()
    assert not ContentType.objects.filter(
        app_label="generations", model__in=["ledgerentry", "walletsnapshot"]
    ).exists()


def test_migrating_back_gives_the_permissions_back_to_generations(old_apps):
    _make_old_permissions(old_apps)
    OldGroup = old_apps.get_model("auth", "Group")
    auditors = OldGroup.objects.create(name="Auditors")
    auditors.permissions.add(_old_permission(old_apps, "generations", "view_spend"))
    _migrate()
    assert Group.objects.get(name="Auditors").permissions.get().content_type.app_label == (
        "credits"
    )

    again = _migrate(BEFORE_THE_MOVE)

    restored = again.get_model("auth", "Group").objects.get(name="Auditors").permissions.get()
    assert (restored.content_type.app_label, restored.content_type.model) == (
        "generations",
        "generation",
    )


def test_no_trigger_sits_on_a_table_of_another_app(db):
    """A trigger is named for the app whose migration installed it (``credits_...``,
    ``generations_...``), and that app must own the table it sits on."""
    from django.apps import apps

    owner = {
        model._meta.db_table: model._meta.app_label
        for model in apps.get_models(include_auto_created=True)
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal"
        )
        triggers = cursor.fetchall()
    assert ("credits_ledger_append_only", "generations_ledgerentry") in triggers
    # The finished-generation counters are gone (generations 0012): the spend review counts.
    assert not [name for name, _table in triggers if "finished" in name]
    strangers = [
        (name, table) for name, table in triggers if not name.startswith(f"{owner.get(table)}_")
    ]
    assert strangers == []


def test_no_index_named_for_one_app_sits_on_a_table_of_another(db):
    from django.apps import apps

    owner = {model._meta.db_table: model._meta.app_label for model in apps.get_models()}
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, tablename FROM pg_indexes WHERE schemaname = 'public'")
        indexes = cursor.fetchall()
    assert ("generation_final_idx", "generations_generation") in indexes
    strangers = [
        (name, table)
        for name, table in indexes
        # Names Django or PostgreSQL made from the table's own name are not an app's.
        if name.split("_")[0] in {"credits", "reviews", "generations"}
        and table in owner
        and not name.startswith((f"{owner[table]}_", f"{table}_"))
    ]
    assert strangers == []


BEFORE_THE_CONCEPT_JOB_COLUMN = [
    ("credits", "0010_drop_finished_generation_counts"),
    ("generations", "0015_jobs_poll_errors_and_attention_since"),
]


@pytest.fixture
def apps_before_the_column(transactional_db):
    """The ledger before concept jobs had a column; the latest migration again afterwards."""
    try:
        yield _migrate(BEFORE_THE_CONCEPT_JOB_COLUMN)
    finally:
        _migrate()


def test_concept_jobs_entries_are_tied_to_their_job_from_their_note(apps_before_the_column):
    apps = apps_before_the_column
    OldUser = apps.get_model("auth", "User")
    OldJob = apps.get_model("generations", "ConceptJob")
    OldGeneration = apps.get_model("generations", "Generation")
    OldEntry = apps.get_model("credits", "LedgerEntry")
    owner = OldUser.objects.create(username="concept-owner")
    job = OldJob.objects.create(
        owner=owner, image_model="gemini_25_flash", prompt="a robot", credit_estimate=10
    )
    other = OldJob.objects.create(
        owner=owner, image_model="gemini_25_flash", prompt="a lamp", credit_estimate=5
    )
    generation = OldGeneration.objects.create(
        owner=owner, provider="hunyuan_rapid", credit_estimate=35
    )

    written = []

    def entry(kind, amount, note, **tie):
        written.append(amount)
        return OldEntry.objects.create(kind=kind, user=owner, amount=amount, note=note, **tie).pk

    tied = {
        job.pk: [
            entry("hold", -10, f"concept job {job.pk}: held at submit"),
            entry("release", 10, f"concept job {job.pk}: hold became a charge"),
            entry("charge", -10, f"concept job {job.pk}: image task t-1"),
            entry("refund", 10, f"concept job {job.pk}: upstream FAILED"),
        ],
        other.pk: [entry("hold", -5, f"concept job {other.pk}: held at submit")],
    }
    untied = [
        # A second hold of one job (never made by the transitions): the first is tied.
        entry("hold", -10, f"concept job {job.pk}: held twice"),
        # A job that is not there, a note that only looks alike, an adjustment.
        entry("hold", -7, "concept job 987654: held at submit"),
        entry("adjustment", 3, f"concept job {job.pk}? no: a correction"),
        entry("adjustment", -2, "goodwill"),
        # A generation's entry, whatever its note says.
        entry("hold", -35, f"concept job {job.pk}: held", generation=generation),
    ]
    # The ledger refuses updates in the database; the migration must still tie them.
    _migrate()

    for job_id, pks in tied.items():
        assert sorted(
            LedgerEntry.objects.filter(concept_job_id=job_id).values_list("pk", flat=True)
        ) == sorted(pks)
    assert not LedgerEntry.objects.filter(pk__in=untied, concept_job__isnull=False).exists()
    # Nothing added, changed or lost: only tied.
    assert LedgerEntry.objects.filter(user_id=owner.pk).count() == len(written) == 10
    assert LedgerEntry.objects.filter(user_id=owner.pk).balance() == sum(written)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgenabled FROM pg_trigger WHERE tgname = 'credits_ledger_append_only'"
        )
        assert cursor.fetchone() == ("O",)  # enabled again
        with pytest.raises(Exception, match="append-only"):
            cursor.execute(
                "UPDATE generations_ledgerentry SET note = 'x' WHERE id = %s", [untied[0]]
            )


def test_migrating_back_keeps_every_entry_of_a_concept_job(apps_before_the_column):
    _migrate()
    from generations.models import ConceptJob

    owner = User.objects.create(username="concept-owner")
    job = ConceptJob.objects.create(
        owner=owner, image_model="gemini_25_flash", prompt="a robot", credit_estimate=10
    )
    job._ledger(LedgerEntry.Kind.HOLD, -10, "held at submit")
    job._ledger(LedgerEntry.Kind.RELEASE, 10, "canceled")

    again = _migrate(BEFORE_THE_CONCEPT_JOB_COLUMN)

    OldEntry = again.get_model("credits", "LedgerEntry")
    assert list(
        OldEntry.objects.filter(user_id=owner.pk).values_list("kind", "amount", "note")
    ) == [
        ("hold", -10, f"concept job {job.pk}: held at submit"),
        ("release", 10, f"concept job {job.pk}: canceled"),
    ]
