#!/usr/bin/env bash
# docker/validate.sh - offline checks of docker/compose.yaml and docker/k8s/
# (no cluster, no Docker): prints PASS/FAIL lines, exits 1 on any FAIL.
#  1. every file parses as YAML (python3 + PyYAML) and each object has
#     apiVersion/kind/metadata.name;
#  2. kubectl kustomize renders them all (kubectl's own decoding of the
#     objects; `kubectl apply --dry-run=client` needs an API server for
#     discovery and cannot run here);
#  3. consistency: the ConfigMap's emotiond.json is accepted by
#     `emotiond serve --config FILE --print-config`; every EMOTIOND_* variable
#     set is a known setting; probes use /livez and /readyz; enableServiceLinks
#     is false; terminationGracePeriodSeconds >= preStop sleep + shutdown_grace;
#     the Service, PDB and HPA select/target the Deployment; the Secret key is
#     the file admin_token_file names.
set -u
cd "$(dirname "$0")/.."
BIN=${BIN:-build/emotiond}
fail=0
python3 - "$BIN" <<'PY' || fail=1
import glob, json, os, re, subprocess, sys, tempfile
import yaml
binary = sys.argv[1]
fails = 0
def check(ok, msg):
    global fails
    print(("PASS: " if ok else "FAIL: ") + msg)
    fails += 0 if ok else 1
files = sorted(glob.glob("docker/k8s/*.yaml") + glob.glob("docker/k8s/*/*.yaml"))
objs = {}
for f in files:
    try:
        docs = [d for d in yaml.safe_load_all(open(f)) if d]
    except yaml.YAMLError as e:
        check(False, f"{f}: YAML: {e}"); continue
    for d in docs:
        ok = all(k in d for k in ("apiVersion", "kind", "metadata")) and "name" in d["metadata"]
        check(ok, f"{f}: {d.get('kind')}/{d.get('metadata', {}).get('name')} parses with apiVersion, kind, name")
        objs[(d["kind"], d["metadata"]["name"])] = d
compose = yaml.safe_load(open("docker/compose.yaml"))
check("emotiond" in compose.get("services", {}), "docker/compose.yaml parses, service emotiond")

with tempfile.TemporaryDirectory() as t:
    for f in files:
        open(os.path.join(t, os.path.basename(f)), "w").write(open(f).read())
    open(os.path.join(t, "kustomization.yaml"), "w").write(
        "resources:\n" + "".join(f"- {os.path.basename(f)}\n" for f in files))
    r = subprocess.run(["kubectl", "kustomize", t], capture_output=True, text=True)
    check(r.returncode == 0, "kubectl kustomize renders every manifest" + ("" if r.returncode == 0 else ": " + r.stderr.strip()))

known = set()
h = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True).stdout
for m in re.finditer(r"^  --([a-z0-9-]+)", h, re.M):
    known.add("EMOTIOND_" + m.group(1).replace("-", "_").upper())
known.add("EMOTIOND_CONFIG")

cm = objs[("ConfigMap", "emotiond-config")]
with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as tf:
    tf.write(cm["data"]["emotiond.json"])
r = subprocess.run([binary, "serve", "--config", tf.name, "--print-config"], capture_output=True, text=True,
                   env={k: v for k, v in os.environ.items() if not k.startswith("EMOTIOND_")})
os.unlink(tf.name)
check(r.returncode == 0, "ConfigMap emotiond.json accepted by emotiond serve --print-config" + ("" if r.returncode == 0 else ": " + r.stderr.strip()))
cfg = json.loads(cm["data"]["emotiond.json"])

dep = objs[("Deployment", "emotiond")]
pod = dep["spec"]["template"]["spec"]
main = next(c for c in pod["containers"] if c["name"] == "emotiond")
def envs(containers):
    return [e["name"] for c in containers for e in c.get("env", [])]
bad = [e for e in envs(pod["containers"] + pod.get("initContainers", [])) +
       envs(objs[("Job", "emotiond-train")]["spec"]["template"]["spec"]["containers"]) +
       list(compose["services"]["emotiond"].get("environment", {}))
       if e.startswith("EMOTIOND_") and e not in known]
check(not bad, "every EMOTIOND_* variable is a known setting" + (f" (unknown: {bad})" if bad else ""))
check(pod.get("enableServiceLinks") is False, "Deployment: enableServiceLinks false (no EMOTIOND_SERVICE_* injected)")
check(main["livenessProbe"]["httpGet"]["path"] == "/livez", "liveness probe on /livez")
check(main["readinessProbe"]["httpGet"]["path"] == "/readyz", "readiness probe on /readyz")
check("startupProbe" in main, "startup probe present")
pre = main["lifecycle"]["preStop"]["exec"]["command"]
sleep = int(pre[1]) if pre[0] == "sleep" else 0
grace = pod["terminationGracePeriodSeconds"]
check(grace >= sleep + cfg["shutdown_grace"],
      f"terminationGracePeriodSeconds {grace} >= preStop {sleep} + shutdown_grace {cfg['shutdown_grace']}")
res = main["resources"]
check(all(k in res.get(x, {}) for x in ("requests", "limits") for k in ("cpu", "memory")), "resource requests and limits set")
workers = next((e["value"] for e in main.get("env", []) if e["name"] == "EMOTIOND_WORKERS"), str(cfg.get("workers")))
check(workers not in ("0", "None") and float(str(res["limits"]["cpu"]).rstrip("m")) >= int(workers),
      f"workers ({workers}) explicit and within the CPU limit ({res['limits']['cpu']})")
labels = dep["spec"]["template"]["metadata"]["labels"]
sel = dep["spec"]["selector"]["matchLabels"]
check(all(labels.get(k) == v for k, v in sel.items()), "Deployment selector matches its pod labels")
svc = objs[("Service", "emotiond")]
check(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()), "Service selects the Deployment's pods")
ports = [p["name"] for c in pod["containers"] for p in c.get("ports", [])]
check(all(p["targetPort"] in ports for p in svc["spec"]["ports"]), "Service targetPort names a container port")
pdb = objs[("PodDisruptionBudget", "emotiond")]
check(all(labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items()), "PDB selects the Deployment's pods")
hpa = objs[("HorizontalPodAutoscaler", "emotiond")]
check(hpa["spec"]["scaleTargetRef"]["name"] == "emotiond" and hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment",
      "HPA targets the Deployment")
check(hpa["spec"]["minReplicas"] > pdb["spec"]["minAvailable"], "HPA minReplicas > PDB minAvailable (a node drain can proceed)")
sec = objs[("Secret", "emotiond-admin")]
mounts = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
vols = {v["name"]: v for v in pod["volumes"]}
secvol = next(n for n, v in vols.items() if v.get("secret", {}).get("secretName") == "emotiond-admin")
keyfile = mounts[secvol] + "/" + next(iter(sec["stringData"]))
check(cfg.get("admin_token_file") == keyfile, f"admin_token_file is the mounted Secret key ({keyfile})")
cfgvol = next(n for n, v in vols.items() if v.get("configMap", {}).get("name") == "emotiond-config")
check(mounts[cfgvol] == "/etc/emotiond", "ConfigMap mounted over the image's /etc/emotiond (EMOTIOND_CONFIG)")
store = [m for m in main["volumeMounts"] if m["mountPath"] == os.path.dirname(cfg["model"])]
check(bool(store) and store[0].get("readOnly"), "served model on the shared store, mounted read-only")
sys.exit(1 if fails else 0)
PY
if [ $fail -eq 0 ]; then echo "validate: PASS"; else echo "validate: FAIL"; fi
exit $fail
