"""Which Host names the edge serves (docs/security.md): its own names and addresses, never a rebound foreign name."""

import socket

import pytest

from infra.config import SettingsError, StackSettings, parse_access_keys
from infra.control_plane.edge.http_guards import host_allowed


def _own_non_loopback_address():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_loopback_and_configured_names_are_served(tmp_path):
    settings = StackSettings(data_dir=tmp_path, allowed_hosts=("stack.internal",))
    for host in ("127.0.0.1:4566", "localhost:4566", "LOCALHOST", "[::1]:4566", "127.0.0.2", "stack.internal:4566"):
        assert host_allowed(host, settings), host


def test_foreign_names_and_addresses_are_refused(tmp_path):
    settings = StackSettings(data_dir=tmp_path)
    for host in ("evil.example", "evil.example:4566", "localhost.evil.example", "127.0.0.1.nip.io", "", "8.8.8.8"):
        assert not host_allowed(host, settings), host


def test_an_address_of_this_machine_is_served_for_the_docker_relay(tmp_path):
    address = _own_non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    assert host_allowed(f"{address}:40123", StackSettings(data_dir=tmp_path))


def test_access_keys_parse_and_are_required_off_loopback(tmp_path):
    assert parse_access_keys("a:b, c:d:e") == {"a": "b", "c": "d:e"}
    with pytest.raises(SettingsError):
        parse_access_keys("no-secret")
    with pytest.raises(SettingsError):
        StackSettings(data_dir=tmp_path, require_auth=True)
    env = {"SAGESTACK_HOST": "0.0.0.0", "SAGESTACK_ACCESS_KEYS": "k:s"}
    assert StackSettings.from_env(env).auth_required
