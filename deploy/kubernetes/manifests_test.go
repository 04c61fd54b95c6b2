// Package kubernetes tests the manifests in deploy/kubernetes: they parse, and the DaemonSet's
// mounts, path roots, port and config agree with the agent's own flags and config validation.
package kubernetes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	_ "github.com/l2agent/l2agent/checks/all" // registers the check kinds for validation
	"github.com/l2agent/l2agent/configs"
	imagebuild "github.com/l2agent/l2agent/deploy/container"
	_ "github.com/l2agent/l2agent/remediate/all" // the remediation actions
	_ "github.com/l2agent/l2agent/ticketing/all" // and the ticket backends
)

type object = map[string]any

type doc struct {
	file string
	obj  object
}

// load parses every YAML document of every .yaml file in this directory.
func load(t *testing.T) []doc {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var docs []doc
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			var o object
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: document %d: %v", f, i, err)
			}
			if o == nil {
				continue // empty document
			}
			docs = append(docs, doc{f, o})
		}
	}
	return docs
}

// get walks a path of map keys and list indexes.
func get(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(object)
			if !ok {
				t.Fatalf("%v: not a map at %q", path, k)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("%v: no item %d", path, k)
			}
			v = l[k]
		}
	}
	return v
}

func str(t *testing.T, v any, path ...any) string {
	t.Helper()
	s, ok := get(t, v, path...).(string)
	if !ok {
		t.Fatalf("%v: not a string", path)
	}
	return s
}

func list(t *testing.T, v any, path ...any) []any {
	t.Helper()
	l, ok := get(t, v, path...).([]any)
	if !ok {
		t.Fatalf("%v: not a list", path)
	}
	return l
}

func byKind(t *testing.T, docs []doc) map[string]object {
	t.Helper()
	m := map[string]object{}
	for _, d := range docs {
		kind, _ := d.obj["kind"].(string)
		if kind == "" || d.obj["apiVersion"] == nil {
			t.Errorf("%s: a document without kind or apiVersion", d.file)
			continue
		}
		if _, dup := m[kind]; dup {
			t.Errorf("%s: a second %s", d.file, kind)
		}
		m[kind] = d.obj
	}
	return m
}

func TestKinds(t *testing.T) {
	m := byKind(t, load(t))
	for _, k := range []string{"Namespace", "DaemonSet", "ConfigMap", "Service", "ServiceAccount", "PodMonitor", "ServiceMonitor", "Kustomization"} {
		if m[k] == nil {
			t.Errorf("no %s", k)
		}
	}
	for k, o := range m {
		if k == "Kustomization" || k == "Namespace" {
			continue
		}
		if ns := str(t, o, "metadata", "namespace"); ns != "l2agent" {
			t.Errorf("%s: namespace %q", k, ns)
		}
	}
	// kustomization.yaml lists existing files and leaves the CRD-based examples out.
	for _, r := range list(t, m["Kustomization"], "resources") {
		f := r.(string)
		if _, err := os.Stat(f); err != nil {
			t.Errorf("kustomization: %v", err)
		}
		if f == "podmonitor.yaml" || f == "servicemonitor.yaml" {
			t.Errorf("kustomization: %s needs the Prometheus Operator's CRDs", f)
		}
	}
}

// container is the DaemonSet's l2agent container, and the pod spec.
func container(t *testing.T, ds object) (c, spec object) {
	t.Helper()
	spec = get(t, ds, "spec", "template", "spec").(object)
	cs := list(t, spec, "containers")
	if len(cs) != 1 {
		t.Fatalf("%d containers, want 1", len(cs))
	}
	return cs[0].(object), spec
}

// flagValues parses the container's args after "run" as --name=value.
func flagValues(t *testing.T, c object) map[string]string {
	t.Helper()
	args := list(t, c, "args")
	if len(args) == 0 || args[0] != "run" {
		t.Fatalf("args %v: want the run command first", args)
	}
	flags := map[string]string{}
	for _, a := range args[1:] {
		s := a.(string)
		name, value, ok := strings.Cut(strings.TrimPrefix(s, "--"), "=")
		if !strings.HasPrefix(s, "--") || !ok {
			t.Fatalf("arg %q: want --name=value", s)
		}
		flags[name] = value
	}
	return flags
}

func TestDaemonSetPathsMatchMounts(t *testing.T) {
	m := byKind(t, load(t))
	ds := m["DaemonSet"]
	c, spec := container(t, ds)
	flags := flagValues(t, c)

	if spec["hostPID"] != true {
		t.Error("hostPID is not true")
	}
	hostPaths := map[string]string{} // volume name → host path
	for _, v := range list(t, spec, "volumes") {
		if hp, ok := v.(object)["hostPath"].(object); ok {
			hostPaths[str(t, v, "name")] = hp["path"].(string)
		}
	}
	type mount struct {
		path, propagation string
		readOnly          bool
	}
	mounts := map[string]mount{} // host path → mount
	for _, vm := range list(t, c, "volumeMounts") {
		o := vm.(object)
		hp, ok := hostPaths[str(t, o, "name")]
		if !ok {
			continue
		}
		ro, _ := o["readOnly"].(bool)
		prop, _ := o["mountPropagation"].(string)
		mounts[hp] = mount{str(t, o, "mountPath"), prop, ro}
	}
	for _, tc := range []struct{ flag, host, config string }{
		{"path.procfs", "/proc", "procfs"},
		{"path.sysfs", "/sys", "sysfs"},
		{"path.rootfs", "/", "rootfs"},
	} {
		mt, ok := mounts[tc.host]
		if !ok {
			t.Errorf("host %s is not mounted", tc.host)
			continue
		}
		if v, ok := flags[tc.flag]; !ok || v != mt.path {
			t.Errorf("--%s=%q, but the host's %s is mounted at %s", tc.flag, v, tc.host, mt.path)
		}
		if !mt.readOnly {
			t.Errorf("host %s is mounted read-write", tc.host)
		}
		if tc.host == "/" && mt.propagation != "HostToContainer" {
			t.Errorf("host / mountPropagation %q, want HostToContainer", mt.propagation)
		}
	}
	if mounts["/var/lib/l2agent"].path != "/var/lib/l2agent" {
		t.Errorf("state dir: hostPath /var/lib/l2agent not mounted at /var/lib/l2agent: %+v", mounts["/var/lib/l2agent"])
	}

	// The config flag names the ConfigMap's key where the ConfigMap is mounted.
	cm := m["ConfigMap"]
	var cfgDir string
	for _, v := range list(t, spec, "volumes") {
		if ref, ok := v.(object)["configMap"].(object); ok && ref["name"] == str(t, cm, "metadata", "name") {
			for _, vm := range list(t, c, "volumeMounts") {
				if vm.(object)["name"] == v.(object)["name"] {
					cfgDir = str(t, vm, "mountPath")
				}
			}
		}
	}
	if want := filepath.Join(cfgDir, "agent.yaml"); cfgDir == "" || flags["config"] != want {
		t.Errorf("--config=%q, ConfigMap mounted at %q", flags["config"], cfgDir)
	}

	// Security context as in the systemd unit.
	sc := get(t, c, "securityContext").(object)
	if sc["runAsUser"] != 0 || sc["readOnlyRootFilesystem"] != true || sc["allowPrivilegeEscalation"] != false {
		t.Errorf("securityContext %v", sc)
	}
	// The unit's one (the agent's own reads), plus SYS_PTRACE, which the unit gives to the
	// remediation helper (in the pod remediation runs in the agent: no helper socket), and
	// SYS_CHROOT for paths.chroot (the host's programs run chrooted into /host/root; on the
	// host they are the host's already).
	caps := get(t, sc, "capabilities").(object)
	if !slices.Equal(caps["drop"].([]any), []any{"ALL"}) || !slices.Equal(caps["add"].([]any), []any{"DAC_READ_SEARCH", "SYS_PTRACE", "SYS_CHROOT"}) {
		t.Errorf("capabilities %v", caps)
	}
	unit, err := os.ReadFile("../systemd/l2agent.service")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^CapabilityBoundingSet=CAP_DAC_READ_SEARCH$`).Match(unit) {
		t.Error("the systemd unit's capabilities differ from the DaemonSet's")
	}

	// Probes on the agent's endpoints.
	for probe, path := range map[string]string{"livenessProbe": "/-/healthy", "readinessProbe": "/-/ready"} {
		if p := str(t, c, probe, "httpGet", "path"); p != path {
			t.Errorf("%s path %q, want %q", probe, p, path)
		}
	}
}

func TestPorts(t *testing.T) {
	m := byKind(t, load(t))
	c, _ := container(t, m["DaemonSet"])
	flags := flagValues(t, c)
	_, port, err := net.SplitHostPort(flags["web.listen-address"])
	if err != nil {
		t.Fatalf("--web.listen-address: %v", err)
	}
	var containerPort string
	for _, p := range list(t, c, "ports") {
		if p.(object)["name"] == "metrics" {
			containerPort = fmt.Sprint(get(t, p, "containerPort"))
		}
	}
	if containerPort != port {
		t.Errorf("containerPort metrics %q, --web.listen-address port %q", containerPort, port)
	}
	for _, probe := range []string{"livenessProbe", "readinessProbe"} {
		if p := get(t, c, probe, "httpGet", "port"); p != "metrics" && fmt.Sprint(p) != port {
			t.Errorf("%s port %v", probe, p)
		}
	}

	svc := m["Service"]
	var found bool
	for _, p := range list(t, svc, "spec", "ports") {
		if p.(object)["name"] != "metrics" {
			continue
		}
		found = true
		if fmt.Sprint(get(t, p, "port")) != port {
			t.Errorf("Service port %v, want %s", get(t, p, "port"), port)
		}
		if tp := fmt.Sprint(get(t, p, "targetPort")); tp != "metrics" && tp != port {
			t.Errorf("Service targetPort %v", tp)
		}
	}
	if !found {
		t.Error("Service: no port named metrics")
	}
	podLabels := get(t, m["DaemonSet"], "spec", "template", "metadata", "labels").(object)
	selects := func(kind string, sel any) {
		for k, v := range sel.(object) {
			if podLabels[k] != v {
				t.Errorf("%s selector %s=%v does not select the DaemonSet's pods", kind, k, v)
			}
		}
	}
	selects("Service", get(t, svc, "spec", "selector"))
	selects("PodMonitor", get(t, m["PodMonitor"], "spec", "selector", "matchLabels"))
	svcLabels := get(t, svc, "metadata", "labels").(object)
	for k, v := range get(t, m["ServiceMonitor"], "spec", "selector", "matchLabels").(object) {
		if svcLabels[k] != v {
			t.Errorf("ServiceMonitor selector %s=%v does not select the Service", k, v)
		}
	}
	for _, ep := range list(t, m["PodMonitor"], "spec", "podMetricsEndpoints") {
		if str(t, ep, "port") != "metrics" {
			t.Errorf("PodMonitor endpoint port %v", get(t, ep, "port"))
		}
	}
	for _, ep := range list(t, m["ServiceMonitor"], "spec", "endpoints") {
		if str(t, ep, "port") != "metrics" {
			t.Errorf("ServiceMonitor endpoint port %v", get(t, ep, "port"))
		}
	}
}

func TestConfigMapIsValid(t *testing.T) {
	m := byKind(t, load(t))
	data := str(t, m["ConfigMap"], "data", "agent.yaml")
	cfg, err := configs.Parse("configmap.yaml agent.yaml", []byte(data))
	if err != nil {
		t.Fatalf("the ConfigMap's agent.yaml is rejected:\n%v", err)
	}
	c, _ := container(t, m["DaemonSet"])
	flags := flagValues(t, c)
	if cfg.StateDir != "/var/lib/l2agent" {
		t.Errorf("state_dir %q", cfg.StateDir)
	}
	if cfg.ListenAddress != flags["web.listen-address"] {
		t.Errorf("listen_address %q, --web.listen-address %q", cfg.ListenAddress, flags["web.listen-address"])
	}
	// The config's paths equal the flags, so that `l2agent check` in the pod reads the host.
	for flag, v := range map[string]string{"path.procfs": cfg.Paths.Procfs, "path.sysfs": cfg.Paths.Sysfs, "path.rootfs": cfg.Paths.Rootfs} {
		if flags[flag] != v {
			t.Errorf("config paths: %q, --%s=%q", v, flag, flags[flag])
		}
	}
	// The same checks as the embedded default.
	var names, want []string
	for _, ch := range cfg.Checks {
		names = append(names, ch.Name)
	}
	for _, ch := range configs.Default().Checks {
		want = append(want, ch.Name)
	}
	if !slices.Equal(names, want) {
		t.Errorf("checks %v, the default has %v", names, want)
	}
}

// TestImage: the DaemonSet runs the image `make image` builds (its tag), and
// the ConfigMap runs the checks' programs chrooted into the host's root, which
// the container may do (SYS_CHROOT): the image has no apt or sshd of its own.
func TestImage(t *testing.T) {
	m := byKind(t, load(t))
	c, _ := container(t, m["DaemonSet"])
	if img := str(t, c, "image"); img != imagebuild.DefaultTag {
		t.Errorf("DaemonSet image %q, but make image tags %q", img, imagebuild.DefaultTag)
	}
	cfg, err := configs.Parse("configmap.yaml agent.yaml", []byte(str(t, m["ConfigMap"], "data", "agent.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Paths.Chroot {
		t.Error("paths.chroot is off: patches and mfa would run the image's apt and sshd, which it does not have")
	}
	add := get(t, c, "securityContext", "capabilities", "add").([]any)
	if !slices.Contains(add, any("SYS_CHROOT")) {
		t.Error("paths.chroot needs SYS_CHROOT")
	}
	// apt-get, chrooted into the host's read-only root, writes its temporary files to
	// the host's /tmp: mounted writable over it.
	_, spec := container(t, m["DaemonSet"])
	var tmpVolume string
	for _, v := range list(t, spec, "volumes") {
		if hp, ok := v.(object)["hostPath"].(object); ok && hp["path"] == "/tmp" {
			tmpVolume = str(t, v, "name")
		}
	}
	found := false
	for _, vm := range list(t, c, "volumeMounts") {
		o := vm.(object)
		if o["name"] == tmpVolume && o["mountPath"] == cfg.Paths.Rootfs+"/tmp" && o["readOnly"] != true {
			found = true
		}
	}
	if !found {
		t.Errorf("the host's /tmp is not mounted writable at %s/tmp", cfg.Paths.Rootfs)
	}
}

// TestFlagsExist builds the agent and checks that every flag of the DaemonSet is in
// `l2agent run --help`, and that the agent accepts them with the ConfigMap's config.
func TestFlagsExist(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent")
	}
	m := byKind(t, load(t))
	c, _ := container(t, m["DaemonSet"])
	flags := flagValues(t, c)

	dir := t.TempDir()
	bin := filepath.Join(dir, "l2agent")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/l2agent")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "run", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("l2agent run --help: %v\n%s", err, out)
	}
	for name := range flags {
		if !regexp.MustCompile(`(?m)^\s+-` + regexp.QuoteMeta(name) + `\b`).Match(out) {
			t.Errorf("--%s is not a flag of l2agent run:\n%s", name, out)
		}
	}

	// `l2agent config validate` agrees on the ConfigMap's agent.yaml.
	cfg := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(cfg, []byte(str(t, m["ConfigMap"], "data", "agent.yaml")), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "config", "validate", cfg).CombinedOutput(); err != nil {
		t.Errorf("l2agent config validate: %v\n%s", err, out)
	}
}

// TestKustomize renders the kustomization with kubectl when it is installed (offline; no
// cluster needed). Not required.
func TestKustomize(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed")
	}
	out, err := exec.Command(kubectl, "kustomize", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, out)
	}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	var kinds []string
	for {
		var o object
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("kubectl kustomize output: %v", err)
		}
		kinds = append(kinds, fmt.Sprint(o["kind"]))
	}
	slices.Sort(kinds)
	if want := []string{"ConfigMap", "DaemonSet", "Namespace", "Service", "ServiceAccount"}; !slices.Equal(kinds, want) {
		t.Errorf("kubectl kustomize rendered %v, want %v", kinds, want)
	}
}
