"""Administration and topology files through the XML-RPC API, in ToMaTo's
style (Python standard library only): organizations, sites, accounts,
templates, profiles and networks are created, listed, changed and
removed by an administrator; others are refused with a clear error;
removals of what is still in use are refused; capabilities; and a
topology exported, imported and exported again. Prints one fact a line."""

import json
import os

from e2e import outcome, proxy

root = proxy("root", os.environ["ROOT_PASSWORD"])
alice = proxy("alice", os.environ["ALICE_PASSWORD"])
last = ""


def error(call):
    """The error code, or `ok`; the message goes to `last`."""
    global last
    result, last = outcome(call)
    return result


# Organizations, in ToMaTo's [args], {kwargs} form too.
print("org create", root.organization_create(["uni"], {"label": "University", "attrs": {"description": "a test"}})["label"])
print("org list", " ".join(o["name"] for o in root.organization_list()))
print("org modify", root.organization_modify("uni", {"label": "Uni KL", "homepage_url": "https://uni.example"})["label"])
print("org bad attr", error(lambda: root.organization_modify("uni", {"colour": "red"})))
print("org bad attr message", last)
print("alice org create", error(lambda: alice.organization_create("mine")))
print("alice org create message", last)

# Sites.
print("site create", root.site_create("kl", "uni", "Kaiserslautern", {"location": "KL"})["organization"])
print("site list", " ".join(s["name"] for s in root.site_list("uni")))
print("site modify", root.site_modify("kl", {"description": "the lab"})["description"])
print("site bad value", error(lambda: root.site_modify("kl", {"location": 5})))
print("site bad value message", last)
print("alice site create", error(lambda: alice.site_create("mine", "uni")))

# Accounts: an organization admin manages their organization only.
root.account_create("carol", "carol-secret", "uni", {"realname": "Carol", "email": "carol@uni.example"})
print("carol flags", " ".join(root.account_modify("carol", {"flags": {"orga_admin": True}})["flags"]))
carol = proxy("carol", "carol-secret")
print("list uni", " ".join(a["name"] for a in root.account_list("uni")))
print("list admins", " ".join(a["name"] for a in root.account_list([], {"with_flag": "global_admin"})))
print("carol list uni", len(carol.account_list("uni")))
print("carol list all", error(lambda: carol.account_list()))
print("carol creates dave", error(lambda: carol.account_create("dave", "dave-secret", "uni")))
print("carol grants global", error(lambda: carol.account_modify("dave", {"flags": {"global_topl_owner": True}})))
print("carol grants global message", last)
print("carol grants herself admin", error(lambda: carol.account_modify("carol", {"flags": {"global_admin": True}})))
print("carol sets over_quota", " ".join(carol.account_modify("dave", {"flags": {"over_quota": True}})["flags"]))
print("carol modifies alice", error(lambda: carol.account_modify("alice", {"realname": "A"})))
# A user changes their own name, e-mail, password and client data; not flags.
me = alice.account_modify(None, {"realname": "Alice A.", "email": "alice@lab.example", "_editor": {"grid": True}})
print("alice self", me["realname"], me["email"], me["client_data"]["_editor"]["grid"])
print("alice self flag", error(lambda: alice.account_modify(None, {"flags": {"global_admin": True}})))
print("alice self flag message", last)
skipped = alice.account_modify([], {"attrs": {"flags": {"global_admin": True, "nomails": True}},
                                    "ignore_flag_on_unauthorized": True})
print("alice ignore flag", " ".join(skipped["flags"]))
print("alice quota", error(lambda: alice.account_modify(None, {"quota": {"monthly": {"traffic": 1}}})))
print("alice bad key", error(lambda: alice.account_modify(None, {"colour": "red"})))
alice.account_modify(None, {"password": "alice-secret-2"})
alice = proxy("alice", "alice-secret-2")
print("alice new password", alice.account_info()["name"])
print("alice removes carol", error(lambda: alice.account_remove("carol")))
print("flags", len(root.account_flags()), " ".join(sorted(root.account_flag_categories())))
print("flag configuration", len(root.account_flag_configuration()["categories"]))
print("roles", " ".join(sorted(root.topology_permissions())), root.role_list()["owner"]["title"])

# Templates, profiles and networks: global admins and host managers only.
tpl = root.template_create("container", "debian", {"urls": ["https://example.org/debian.tar.gz"], "preference": 5})
print("template list", " ".join(t["name"] for t in alice.template_list("container")))
print("template modify", root.template_modify(tpl["id"], {"restricted": True})["restricted"])
print("template info", alice.template_info(tpl["id"])["preference"])
print("template bad tech", error(lambda: root.template_create("vm", "x")))
print("template bad tech message", last)
print("template bad value", error(lambda: root.template_modify(tpl["id"], {"preference": "high"})))
print("template bad value message", last)
print("alice template create", error(lambda: alice.template_create("container", "mine")))
print("alice template create message", last)
prof = root.profile_create("container", "small", {"ram": 256})
print("profile", prof["ram"], prof["cpus"], root.profile_modify(prof["id"], {"cpus": 2})["cpus"])
print("profile list", " ".join(p["name"] for p in alice.profile_list()))
print("profile bad ram", error(lambda: root.profile_modify(prof["id"], {"ram": 0})))
print("alice profile remove", error(lambda: alice.profile_remove(prof["id"])))
net = root.network_create("internet", {"label": "Internet"})
print("network", net["id"], root.network_modify("internet", {"preference": 10})["preference"])
print("network info", alice.network_info("internet")["label"])
print("alice network create", error(lambda: alice.network_create("lan")))
root.template_remove(tpl["id"])
root.profile_remove(prof["id"])
root.network_remove("internet")
print("after removal", len(root.template_list()), len(root.profile_list()), len(root.network_list()))
print("template gone", error(lambda: root.template_info(tpl["id"])))

# Hosts.
print("host info", alice.host_info("host1")["site"])
print("host modify", root.host_modify("host1", {"description": "test host"})["name"])
print("alice host modify", error(lambda: alice.host_modify("host1", {"enabled": False})))
print("host bad attr", error(lambda: root.host_modify("host1", {"cpus": 4})))

# Removal of what is still in use is refused.
print("remove uni in use", error(lambda: root.organization_remove("uni")))
print("remove uni in use message", last)
print("remove site1 in use", error(lambda: root.site_remove("site1")))
print("remove site1 in use message", last)
print("carol removes dave", error(lambda: carol.account_remove("dave")))
root.account_remove("carol")
root.site_remove("kl")
print("uni removed", error(lambda: root.organization_remove("uni")))
print("uni gone", error(lambda: root.organization_info("uni")))

# Capabilities from the kinds' registry, and as a host offers them.
caps = alice.capabilities()
print("capabilities", "container" in caps["element"], "bridge" in caps["connection"])
print("capabilities container", root.capabilities_element("container")["name"],
      "ram" in root.capabilities_element("container", "host1")["attributes"])
print("capabilities bridge", "delay_to" in root.capabilities_connection("bridge", "host1")["attributes"])
print("capabilities unknown", error(lambda: root.capabilities_element("toaster")))
print("capabilities unknown message", last)
print("capabilities no host", error(lambda: root.capabilities_element("container", "nohost")))

# A topology exported, imported and exported again.
tid = alice.topology_create()["id"]
alice.topology_modify(tid, {"name": "exchange", "_notes": "two nodes"})
ifaces = []
for name, addr in [("pc1", "10.0.0.1/24"), ("pc2", "10.0.0.2/24")]:
    ct = alice.element_create(tid, "container", None, {"_name": name, "_pos": {"x": 1, "y": 2}})
    ifc = alice.element_create(tid, "container_interface", ct["id"], {"_name": name + ".eth0", "ip4address": addr})
    ifaces.append(ifc["id"])
alice.connection_create(ifaces[0], ifaces[1], {"type": "bridge", "delay_to": 10})
first = alice.topology_export(tid)
print("export", first["file_information"]["version"], len(first["topology"]["elements"]),
      len(first["topology"]["connections"]), first["topology"]["name"])
print("export ids", " ".join(sorted(e["id"] for e in first["topology"]["elements"])))
answer = alice.topology_import(first)
tid2 = answer[0]
print("import", len(answer[1]), len(answer[2]), len(answer[3]), tid2 != tid)
second = alice.topology_export(tid2)
print("roundtrip", first == second)
print("exported", json.dumps(first, sort_keys=True))
if first != second:
    print("first ", json.dumps(first, sort_keys=True))
    print("second", json.dumps(second, sort_keys=True))
print("imported info", alice.topology_info(tid2)["name"], len(alice.topology_info(tid2)["elements"]))
bad = json.loads(json.dumps(first))
bad["topology"]["elements"][0]["ram"] = "lots"
bad["topology"]["connections"][0]["delay_to"] = "slow"
print("import bad", error(lambda: alice.topology_import(bad)))
print("import bad message", last)
print("import version", error(lambda: alice.topology_import({"file_information": {"version": 9}, "topology": {}})))
print("import version message", last)
print("topologies", len(alice.topology_list()))
print("root export", error(lambda: root.topology_export(tid)))
for t in (tid, tid2):
    alice.topology_remove(t)
print("topologies left", len(alice.topology_list()))
