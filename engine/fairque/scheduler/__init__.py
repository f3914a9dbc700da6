"""Cron schedules for tasks and DAGs, fired once per tick by one of many schedulers."""
