"""Two chat.Servers as nodes of one cluster on a redis-server of the test's
own (the Debian package redis-server: installed with apt-get when missing,
or the test fails saying so): the cluster's fields of stats() (state,
nodes, users, relayed frames), and a server without redis_url reporting
cluster_state 0."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from helpers import DEADLINE, chat


def redis_server():
    """The redis-server binary, installed if it is not there."""
    found = shutil.which("redis-server")
    if found is None:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        if subprocess.call(["apt-get", "install", "-y", "-q", "redis-server"], env=env) != 0:
            subprocess.call(["apt-get", "update", "-q"], env=env)
            subprocess.call(["apt-get", "install", "-y", "-q", "redis-server"], env=env)
        found = shutil.which("redis-server")
    if found is None:
        raise AssertionError("redis-server is missing and apt-get could not install it: apt-get install redis-server")
    return found


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ClusterStatsTest(unittest.TestCase):
    def setUp(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="chat-redis-py-")
        self.redis = subprocess.Popen(
            [redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(self.stop_redis)
        end = time.monotonic() + DEADLINE
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            self.assertLess(time.monotonic(), end, "redis-server did not start")
            time.sleep(0.02)  # polling a condition with a deadline

    def stop_redis(self):
        self.redis.kill()
        self.redis.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def node(self):
        s = chat.Server(
            redis_url="redis://127.0.0.1:%d/0" % self.port,
            cluster_name="py",
            node_timeout_ms=1500,
        )
        self.addCleanup(s.close)
        return s

    def test_stats_show_the_cluster(self):
        a, b = self.node(), self.node()
        end = time.monotonic() + DEADLINE
        while True:
            for s in (a, b):
                s.poll(0.01)
            sa, sb = a.stats(), b.stats()
            if (sa.cluster_state, sa.cluster_nodes, sb.cluster_state, sb.cluster_nodes) == (2, 2, 2, 2):
                break
            self.assertLess(time.monotonic(), end, "not up: %r %r" % (sa, sb))
        self.assertEqual(sa.cluster_users, 0)
        self.assertEqual(sa.cluster_relay_failed, 0)
        self.assertGreaterEqual(sa.cluster_reconnects, 0)
        self.assertEqual(sa.cluster_relayed_out, 0)

    def test_a_single_server_is_not_a_node(self):
        s = chat.Server()
        self.addCleanup(s.close)
        st = s.stats()
        self.assertEqual((st.cluster_state, st.cluster_nodes, st.cluster_relayed_in), (0, 0, 0))


if __name__ == "__main__":
    unittest.main()
