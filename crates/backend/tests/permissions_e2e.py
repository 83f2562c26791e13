"""Permissions through the XML-RPC API, Python standard library only:
alice's topology is hidden from bob until alice grants him a role; bob
cannot grant a role above his own; calls without a login get HTTP 401."""

import base64
import json
import os
import urllib.request

from e2e import code, port, proxy

alice = proxy("alice", os.environ["ALICE_PASSWORD"])
bob = proxy("bob", os.environ["BOB_PASSWORD"])

tid = alice.topology_create()["id"]
print("bob info before", code(lambda: bob.topology_info(tid)))
print("bob modify before", code(lambda: bob.topology_modify(tid, {"_x": 1})))
print("bob list before", len(bob.topology_list()))
print("alice grants user", code(lambda: alice.topology_set_permission(tid, "bob", "user")))
print("bob info after", code(lambda: bob.topology_info(tid)))
print("bob client data after", code(lambda: bob.topology_modify(tid, {"_x": 1})))
print("bob rename after", code(lambda: bob.topology_modify(tid, {"name": "mine"})))
print("bob grants himself", code(lambda: bob.topology_set_permission(tid, "bob", "owner")))
print("bob grants carol manager", code(lambda: bob.topology_set_permission(tid, "carol", "manager")))
print("bob list after", len(bob.topology_list()))
print("no login", code(lambda: proxy().topology_list()))
print("wrong password", code(lambda: proxy("alice", "wrong-password").topology_list()))
print("open method", proxy().server_info()["api_version"])
print("bad action", code(lambda: alice.topology_action(tid, "launch")))
print("unknown method", code(lambda: alice.topology_lst()))

# Self-registration, and what others see of an account.
anonymous = proxy()
print("register", code(lambda: anonymous.account_create("dave", "dave-secret", "lab", {"realname": "Dave"})))
print("register again", code(lambda: anonymous.account_create("dave", "dave-secret", "lab")))
print("register bad attr", code(lambda: anonymous.account_create("erin", "erin-secret", "lab", {"flags": ["global_admin"]})))
print("dave flags", " ".join(proxy("dave", "dave-secret").account_info()["flags"]))
print("bob sees alice", " ".join(sorted(bob.account_info("alice"))))
print("bob creates host", code(lambda: bob.host_create("h9", "site1", {})))

# The JSON transport and its OpenAPI document.
request = urllib.request.Request(
    "http://127.0.0.1:%s/api/topology_list" % port, data=b'{"full": false}',
    headers={"Authorization": "Basic " + base64.b64encode(b"bob:" + os.environ["BOB_PASSWORD"].encode()).decode(),
             "Content-Type": "application/json"})
print("json list", len(json.load(urllib.request.urlopen(request))["result"]))
try:
    urllib.request.urlopen(urllib.request.Request(
        "http://127.0.0.1:%s/api/topology_info" % port, data=json.dumps({"id": tid}).encode()))
except urllib.error.HTTPError as e:
    print("json no login", e.code, json.load(e)["error"]["code"])
paths = json.load(urllib.request.urlopen("http://127.0.0.1:%s/api/openapi.json" % port))["paths"]
print("openapi", "/api/topology_create" in paths, "/api/network_instance_list" in paths)
