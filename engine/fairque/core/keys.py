"""Every Redis key and channel name fairque uses, built from one prefix.

No other module (and no Lua script) spells a key. Layout, with the default prefix ``fq``::

    fq:queue:user:{user_id}:critical   List    CRITICAL tasks, FIFO (RPUSH / LPOP)
    fq:queue:user:{user_id}:normal     ZSet    priority 1-5 tasks, score = order (see ordering.py)
    fq:state:{state}                   ZSet    task ids per state (score: see below), but
                                               queued: only tasks queued before the
                                               queued index (workers move them into it)
    fq:queued:seconds                  Hash    the queued index: queued tasks per second
                                               of their order stamp, and ``all`` of them
    fq:queued:since                    ZSet    the seconds holding queued tasks, scored by
                                               the earliest stamp (ms) that entered each
    fq:task:{task_id}                  Hash    task record: the fields of the field table
                                               (core/models.py) under their own names, but
                                               task_id (the key holds it; claims answer it),
                                               fields at their defaults (RECORD_DEFAULTS)
                                               and an enqueued_at its order tells;
                                               claim_token is the claim's token (from
                                               fq:claims:token), which finish, fail,
                                               requeue and extend must quote; acked is
                                               '1' once the holder renewed the lease
    fq:claims:token                    String  last claim token handed out (a counter for
                                               every task and every life of a task id)
    fq:claim:{claim_id}                Hash    what one pop/settle call claimed and
                                               answered (with TTL), so a lost reply can
                                               be asked for again
    fq:deps:waiting:{task_id}          Set     tasks waiting on this task
    fq:deps:blocked:{task_id}          Set     tasks this task is blocked by
    fq:xcom:{scope}                    Hash    XCom values of one run (with TTL)
    fq:lineage:{scope}                 List    XCom pushes and pulls of one run (with TTL,
                                               the newest 10,000)
    fq:log:{task_id}:{attempt}         String  what one attempt wrote to stdout, stderr and
                                               logging (capped; with the record's TTL)
    fq:run:{run_id}                    Hash    a run: dag id, logical date, conf, tasks by name
    fq:runs                            ZSet    every run id, by creation time
    fq:runs:dag:{dag_id}               ZSet    the runs of one DAG, by creation time
    fq:runs:slots:{dag_id}             Set     run keys of the DAG's runs holding a slot of its
                                               max_active_runs (until their last task ends)
    fq:runs:queued:{dag_id}            ZSet    run keys of the DAG's runs waiting for a slot,
                                               by creation time (their tasks do not start)
    fq:runs:retention                  ZSet    every run id, by the time its retention
                                               counts from (creation, then its end once
                                               the trim saw it ended)
    fq:runs:watched                    ZSet    runs with a timeout or callbacks that have
                                               not ended, by when watch.lua last looked
    fq:dags:paused                     Set     ids of paused DAGs (their schedule does not fire)
    fq:stats                           Hash    counters (per user and state, totals)
    fq:stats:queues                    Hash    queued tasks of each queue but the default
                                               one (whose count is the rest)
    fq:schedules                       Hash    cron schedules
    fq:scheduler:lock                  String  scheduler lock (owner token, TTL)
    fq:schedules:cursor                Hash    schedule or DAG id -> last tick handled
    fq:scheduler:errors                Hash    schedule:{id} or dag:{id} -> why it fails (JSON)
    fq:dags:due                        ZSet    scheduled DAG id -> when it next needs the
                                               scheduler (its next tick, or the end of a
                                               scheduler's claim on it), epoch seconds
    fq:dags:template:{dag_id}          List    a scheduled DAG's run template: its version,
                                               then push.lua's arguments for a stand-in
                                               run (fire.lua swaps in each run's id and dates)
    fq:dags:specs                      Hash    scheduled DAG id -> its schedule as the due
                                               index was computed for (changed: recomputed)
    fq:scheduler:lag                   List    newest first, capped: "{at} {dag_id} {lag}",
                                               how late each DAG tick was created
    fq:scheduler:passes                List    newest first, capped: "{at} {token} {seconds}
                                               {fired}", each firing pass of each scheduler
    fq:users:active                    ZSet    users with ready tasks, score = virtual time
                                               (of the queue named ``default``)
    fq:queues:{queue}:user:{user_id}:critical, ...:normal
                                       List, ZSet  a user's ready tasks of another queue
    fq:queues:{queue}:active           ZSet    users with ready tasks of that queue
    fq:tenant-queues:{user_id}         Set     queues (lanes) other than ``default`` where
                                               the user has ready tasks (to let it back)
    fq:pools                           Hash    slots of each gate: a pool (its name) or a
                                               DAG's max_active_tasks (``dag=`` + DAG id)
    fq:pools:running                   Hash    started tasks of each gate
    fq:lanes:open:{queue}              Set     gated lanes of a queue (queue ``~`` gate
                                               ...) with ready tasks and every gate open
    fq:lanes:gate:{gate}               Set     the lanes with ready tasks behind a gate
    fq:tenant:{user_id}                Hash    a tenant's policy (weight, max_running, rate,
                                               burst) and the state enforcing it (see
                                               lua/_tenants.lua)
    fq:tenants                         Set     tenants with a policy of their own
    fq:tenants:default                 Hash    the default policy
    fq:tenants:parked                  ZSet    tenants out of the active set for their cap
                                               (+inf) or rate (when their token is due, ms)
    fq:users:all                       Set     every user that ever had a task (for stats)
    fq:clock                           String  last order stamp handed out (monotonic, µs)
    fq:events:ready                    PubSub  a user became ready: idle workers wake up
    fq:workers                         Set     ids of registered workers
    fq:worker:{worker_id}              Hash    worker heartbeat record

State registries are sorted sets so that each can be ranged by time: the score of
``started`` is the lease expiry, of ``scheduled`` the due time, of every other state
the time the task entered it (all in milliseconds on the Redis server's clock). Queued
tasks are the exception: their users' queues hold them, and an entry each in a registry
cost ~100 bytes a task, so the queued index only counts them per second (the count, and
the oldest one's age to within a second; see lua/_common.lua).

Scripts receive fixed keys through KEYS. A script that must reach records it cannot
name before it runs (pop picks a user and a task id; promote, reclaim and the release of
dependents find ids in a registry) receives the key *templates* below through ARGV and
only appends an id: the layout is still spelled here alone.

On Redis Cluster (a ``redis+cluster://`` URL) every key carries one hash tag,
``{prefix}:{s00}:...`` (:data:`CLUSTER_TAG`), so every key a script touches, declared or
built from a template, is in one hash slot, served by one master: the scripts run as on
one server, and fairque's client is pinned to that master (see
:mod:`fairque.queue.connection`). A cluster so holds fairque on one master, with
failover through its replica. On one server (``redis://``, Sentinel) keys carry no tag:
existing data is served as is.

Sharding over S > 1 masters is designed, not built. Each tenant belongs to one shard
``sNN`` = crc32(user id) mod S, fixed for the deployment (recorded under ``s00``; a
server holding another S, or untagged keys, would be refused until migrated). A shard's
slot holds everything of its tenants: their queues, task records, dependency sets, runs
(a run belongs to the tenant that triggered it) with XCom and lineage, and the shard's
own share of the state registries, counters and active-tenant set with its virtual
clock. A claim reads every shard's head (the smallest virtual time among its active
tenants) in one pipelined round, then runs pop in the shard with the smallest head,
trying the next if that shard emptied meanwhile. Between the read and the claim other
workers may claim too, so a tenant can be served up to one claim per concurrent claimer
ahead of its single-server turn; that is the fairness deviation to measure. A dependency
between tenants of two shards is refused with an error naming both (one script cannot
touch two slots). Schedules, worker heartbeats and the scheduler lock stay in ``s00``
and are only read or written by calls that touch no tenant key; a fired tick is pushed
into its tenant's shard by a second, idempotent call (the run id is the tick's). To get
there every script must take its keys in KEYS (today pop, promote, reclaim and the
release of dependents build some from templates) so that a cluster can check them.
"""

from __future__ import annotations

from dataclasses import dataclass

from fairque.core.models import DEFAULT_QUEUE, LANE_SEPARATOR, TaskState
from fairque.core.urls import parse_redis_url

CLUSTER_TAG = "s00"
"""The hash tag of every key on Redis Cluster (shard 0 of a one-shard layout)."""

CLUSTER_SLOT_KEY = "{" + CLUSTER_TAG + "}"
"""A key in the hash slot of every tagged key (where the cluster client is pinned)."""


def key_tag(url: str | None) -> str | None:
    """The hash tag keys carry for the server at ``url`` (None: the embedded server):
    :data:`CLUSTER_TAG` on Redis Cluster, else None (no tag)."""
    if url is None or parse_redis_url(url).kind != "cluster":
        return None
    return CLUSTER_TAG


@dataclass(frozen=True)
class Keys:
    """Key builder for one prefix (and, on Redis Cluster, one hash tag)."""

    prefix: str = "fq"
    tag: str | None = None

    @property
    def head(self) -> str:
        """What every key starts with: the prefix (``fq``), or ``fq:{s00}`` on a cluster."""
        return self.prefix if self.tag is None else f"{self.prefix}:{{{self.tag}}}"

    def _k(self, *parts: str) -> str:
        return ":".join((self.head, *parts))

    # --- per user --------------------------------------------------------------------
    def _queue_head(self, queue: str) -> str:
        """What a user's queue keys of ``queue`` start with: the keys of the queue named
        ``default`` are those of the time before queues (existing data is served as is)."""
        if queue == DEFAULT_QUEUE:
            return self._k("queue", "user", "")
        return self._k("queues", queue, "user", "")

    def critical(self, user_id: str, queue: str = DEFAULT_QUEUE) -> str:
        """List of the user's CRITICAL tasks (FIFO) of ``queue``."""
        return f"{self._queue_head(queue)}{user_id}:critical"

    def normal(self, user_id: str, queue: str = DEFAULT_QUEUE) -> str:
        """Sorted set of the user's priority 1-5 tasks of ``queue``."""
        return f"{self._queue_head(queue)}{user_id}:normal"

    def user_queues(self, user_id: str, queue: str = DEFAULT_QUEUE) -> tuple[str, str]:
        """The user's (critical, normal) queue keys, in the order scripts take them."""
        return self.critical(user_id, queue), self.normal(user_id, queue)

    # --- per task --------------------------------------------------------------------
    def task(self, task_id: str) -> str:
        """Hash holding one task's record."""
        return self._k("task", task_id)

    def deps_waiting(self, task_id: str) -> str:
        """Set of tasks waiting on ``task_id``."""
        return self._k("deps", "waiting", task_id)

    def deps_blocked(self, task_id: str) -> str:
        """Set of tasks ``task_id`` is blocked by."""
        return self._k("deps", "blocked", task_id)

    @property
    def claim_tokens(self) -> str:
        """Counter handing out claim tokens, unique across tasks and lives of an id."""
        return self._k("claims", "token")

    def claim(self, claim_id: str) -> str:
        """Hash recording what the pop or settle call ``claim_id`` claimed and answered."""
        return self._k("claim", claim_id)

    def xcom(self, scope: str) -> str:
        """Hash of the XCom values of one scope (a run, or a user's standalone tasks)."""
        return self._k("xcom", scope)

    def lineage(self, scope: str) -> str:
        """List of the XCom pushes and pulls of one scope, oldest first."""
        return self._k("lineage", scope)

    def task_log(self, task_id: str, attempt: int) -> str:
        """String holding the output captured from one attempt of a task."""
        return self._k("log", task_id, str(attempt))

    # --- runs ------------------------------------------------------------------------
    def run(self, run_id: str) -> str:
        """Hash describing one run (of a pipeline or a DAG)."""
        return self._k("run", run_id)

    @property
    def runs(self) -> str:
        """Sorted set of every run id, scored by creation time."""
        return self._k("runs")

    def runs_of(self, dag_id: str) -> str:
        """Sorted set of the run ids of one DAG, scored by creation time."""
        return self._k("runs", "dag", dag_id)

    def run_slots(self, dag_id: str) -> str:
        """Set of the run keys of one DAG's runs holding a slot of its max_active_runs."""
        return self._k("runs", "slots", dag_id)

    def queued_runs(self, dag_id: str) -> str:
        """Sorted set of the run keys of one DAG's runs waiting for a slot, by creation."""
        return self._k("runs", "queued", dag_id)

    @property
    def runs_retention(self) -> str:
        """Sorted set of every run id, scored by the time its retention counts from
        (its creation, moved to its end once the trim saw it ended), for ``trim.lua``."""
        return self._k("runs", "retention")

    @property
    def runs_watched(self) -> str:
        """Sorted set of the runs with a timeout or callbacks that have not ended, scored
        by when ``watch.lua`` last looked at them (ms)."""
        return self._k("runs", "watched")

    @property
    def paused_dags(self) -> str:
        """Set of the ids of paused DAGs."""
        return self._k("dags", "paused")

    # --- registries and global state -------------------------------------------------
    def state(self, state: TaskState | str) -> str:
        """Sorted set of the task ids in ``state`` (for QUEUED: only tasks queued before
        the queued index, :attr:`queued_seconds`)."""
        return self._k("state", TaskState(state).value)

    @property
    def queued_seconds(self) -> str:
        """Hash: queued tasks per second of their order stamp, and ``all`` of them."""
        return self._k("queued", "seconds")

    @property
    def queued_since(self) -> str:
        """Sorted set of the seconds holding queued tasks, by the earliest stamp (ms)."""
        return self._k("queued", "since")

    def all_states(self) -> list[str]:
        """Every state registry, in TaskState order (the order scripts take them)."""
        return [self.state(s) for s in TaskState]

    @property
    def stats(self) -> str:
        """Hash of counters."""
        return self._k("stats")

    @property
    def queue_counts(self) -> str:
        """Hash of the queued tasks of each queue other than the default one."""
        return self._k("stats", "queues")

    @property
    def schedules(self) -> str:
        """Hash of cron schedules."""
        return self._k("schedules")

    @property
    def scheduler_lock(self) -> str:
        """The scheduler's distributed lock."""
        return self._k("scheduler", "lock")

    @property
    def schedule_cursors(self) -> str:
        """Hash of the last tick handled per schedule (and per scheduled DAG)."""
        return self._k("schedules", "cursor")

    @property
    def scheduler_errors(self) -> str:
        """Hash of the schedules and DAGs failing in the scheduler's latest pass."""
        return self._k("scheduler", "errors")

    @property
    def dags_due(self) -> str:
        """Sorted set: scheduled DAG id -> when it is next due (epoch seconds)."""
        return self._k("dags", "due")

    def dag_template(self, dag_id: str) -> str:
        """List: a scheduled DAG's run template (see fire.lua)."""
        return self._k("dags", "template", dag_id)

    @property
    def dags_specs(self) -> str:
        """Hash: scheduled DAG id -> the schedule its due time was computed from."""
        return self._k("dags", "specs")

    @property
    def scheduler_lag(self) -> str:
        """Capped list of how late each DAG tick was created (newest first)."""
        return self._k("scheduler", "lag")

    @property
    def scheduler_passes(self) -> str:
        """Capped list of the schedulers' firing passes and their durations."""
        return self._k("scheduler", "passes")

    @property
    def active_users(self) -> str:
        """Sorted set of users with ready tasks (of the default queue), by virtual time."""
        return self._k("users", "active")

    def active(self, queue: str = DEFAULT_QUEUE) -> str:
        """Sorted set of the users with ready tasks of ``queue``, by virtual time."""
        if queue == DEFAULT_QUEUE:
            return self.active_users
        return self._k("queues", queue, "active")

    @property
    def pools(self) -> str:
        """Hash of the slots of each gate (a pool, or a DAG's max_active_tasks)."""
        return self._k("pools")

    @property
    def pools_running(self) -> str:
        """Hash of the started tasks of each gate."""
        return self._k("pools", "running")

    def open_lanes(self, queue: str) -> str:
        """Set of a queue's gated lanes with ready tasks and every gate open."""
        return self._k("lanes", "open", queue)

    def gate_lanes(self, gate: str) -> str:
        """Set of the lanes with ready tasks behind ``gate``."""
        return self._k("lanes", "gate", gate)

    def batch(self, batch_id: str) -> str:
        """List of the task ids a large batch staged, in order (see lua/stage.lua)."""
        return self._k("batch", batch_id)

    @property
    def batches(self) -> str:
        """ZSet of the batches being staged, scored by when they are given up (ms)."""
        return self._k("batches")

    @property
    def pending_steps(self) -> str:
        """List of the bounded work left over by scripts (see lua/continue.lua)."""
        return self._k("pending-steps")

    def tenant_queues(self, user_id: str) -> str:
        """Set of the queues other than the default one where the user has ready tasks."""
        return self._k("tenant-queues", user_id)

    def tenant(self, user_id: str) -> str:
        """Hash of a tenant's policy and of the state enforcing it."""
        return self._k("tenant", user_id)

    @property
    def tenants(self) -> str:
        """Set of the tenants with a policy of their own."""
        return self._k("tenants")

    @property
    def tenant_default(self) -> str:
        """Hash of the default tenant policy."""
        return self._k("tenants", "default")

    @property
    def tenants_parked(self) -> str:
        """Sorted set of the tenants parked by their cap (+inf) or rate (token due, ms)."""
        return self._k("tenants", "parked")

    @property
    def all_users(self) -> str:
        """Set of every user that ever had a task."""
        return self._k("users", "all")

    @property
    def clock(self) -> str:
        """Monotonic order stamp (microseconds) for FIFO within a priority."""
        return self._k("clock")

    @property
    def ready_channel(self) -> str:
        """Pub/sub channel announcing that a user has ready tasks."""
        return self._k("events", "ready")

    @property
    def workers(self) -> str:
        """Set of registered worker ids (a record that expired is a dead worker)."""
        return self._k("workers")

    def worker(self, worker_id: str) -> str:
        """Hash holding one worker's heartbeat record."""
        return self._k("worker", worker_id)

    # --- templates for scripts that find ids at run time -----------------------------
    def templates(self) -> list[str]:
        """Key templates, in the order every script receives them as ARGV[1..6].

        task prefix, user-queue head, critical tail, normal tail,
        deps-waiting prefix, deps-blocked prefix.
        """
        head, tail_critical = self.critical("\x00").split("\x00")
        _, tail_normal = self.normal("\x00").split("\x00")
        return [
            self.task(""),
            head,
            tail_critical,
            tail_normal,
            self.deps_waiting(""),
            self.deps_blocked(""),
        ]

    def queue_templates(self) -> list[str]:
        """The queue templates every script receives last in ARGV (see lua/_common.lua):
        the default queue's name, then, for another queue Q, the head of its keys
        (+ Q + the user infix + user + the critical or normal tail), the user infix,
        the tail of its active set, the tenant-queues prefix (+ user); then the gates:
        the separator of a lane's parts (queue ~ gate ~ ...), the slots and running
        hashes, the open-lanes prefix (+ queue) and the gate-lanes prefix (+ gate); last
        the batch prefix (+ batch id). The step size follows (see QueueCalls)."""
        head = self._k("queues", "")
        return [
            DEFAULT_QUEUE,
            head,
            ":user:",
            ":active",
            self.tenant_queues(""),
            LANE_SEPARATOR,
            self.pools,
            self.pools_running,
            self.open_lanes(""),
            self.gate_lanes(""),
            self.batch(""),
        ]
