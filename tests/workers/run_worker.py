"""A worker subprocess for the crash test: the real app, a short visibility timeout."""

from workers.app import get_app

app = get_app()
app.conf.broker_transport_options = {"visibility_timeout": 2}
app.worker_main(["worker", "--pool=solo", "--loglevel=warning", "--without-heartbeat",
                 "--without-gossip", "--without-mingle"])
