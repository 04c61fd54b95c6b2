package container

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// TestImageJudgesHost builds the image from the Containerfile (the base from
// the cache after the first run), unpacks its root filesystem, runs
// `l2agent check --json` in it under systemd-nspawn with the host's /proc,
// /sys and / mounted as the DaemonSet mounts them and the DaemonSet's
// ConfigMap as its config, and requires the same verdict from every check,
// alert key by alert key, as the same config run directly on the host.
func TestImageJudgesHost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the container image")
	}
	needRoot(t)
	nspawn := needTool(t, "systemd-nspawn")
	needTool(t, "mmdebstrap")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	// The image, as `make image` builds it, from a fresh static agent.
	work := t.TempDir()
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(work, "bin", "l2agent"), "../../cmd/l2agent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	var log bytes.Buffer
	start := time.Now()
	res, err := BuildFile(ctx, BuildOptions{
		Containerfile: "Containerfile", Context: work, Out: filepath.Join(work, "l2agent-image.tar"),
		Tag: DefaultTag, CacheDir: DefaultCacheDir(), Created: time.Unix(0, 0).UTC(), Log: &log,
	})
	require.NoError(t, err, "mmdebstrap:\n%s", log.String())
	var unpacked int64
	for _, l := range res.Layers {
		unpacked += l.Uncompressed
	}
	t.Logf("image %s %s: %.1f MiB archive, %.1f MiB unpacked, built in %s", res.Tag, res.Digest,
		float64(res.ArchiveBytes)/(1<<20), float64(unpacked)/(1<<20), time.Since(start).Round(100*time.Millisecond))

	rootfs := filepath.Join(work, "rootfs")
	unpackImage(t, filepath.Join(work, "l2agent-image.tar"), rootfs)
	// The mount points a container runtime creates before it makes the root read-only.
	for _, d := range []string{"host/proc", "host/sys", "host/root", "etc/l2agent", "var/lib/l2agent"} {
		require.NoError(t, os.MkdirAll(filepath.Join(rootfs, d), 0o755))
	}

	// The DaemonSet's config, as the ConfigMap mounts it; on the host the same with the
	// host's own paths and a state dir of the test's.
	cfg := configMapAgentYAML(t)
	cfgDir, hostState, podState := t.TempDir(), t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(cfgDir, "agent.yaml"), []byte(cfg), 0o644))
	hostCfg := filepath.Join(work, "host.yaml")
	require.True(t, strings.Contains(cfg, "state_dir: /var/lib/l2agent"))
	require.NoError(t, os.WriteFile(hostCfg, []byte(strings.Replace(cfg, "state_dir: /var/lib/l2agent", "state_dir: "+hostState, 1)), 0o644))

	hostname, err := os.Hostname()
	require.NoError(t, err)
	pod := func(args ...string) []string {
		return inCgroup(t, nspawnArgv(nspawn, rootfs, hostname, cfgDir, podState, args...))
	}
	onHost := func() (report, time.Duration) {
		return runCheck(t, ctx, []string{filepath.Join(work, "bin", "l2agent"), "check", "--json", "--config", hostCfg,
			"--path.procfs=/proc", "--path.sysfs=/sys", "--path.rootfs=/"})
	}
	// The host is run before and after the container: the container's state of each key
	// must be one of the two (a mount that came or went meanwhile, a CPU that got busy).
	// Left are cpu and memory values that moved between runs: those alone are retried.
	for attempt := 1; ; attempt++ {
		before, _ := onHost()
		in, inTook := runCheck(t, ctx, pod("check", "--json", "--config", "/etc/l2agent/agent.yaml"))
		after, hostTook := onHost()
		t.Logf("attempt %d: l2agent check took %s in the container, %s on the host", attempt, inTook.Round(time.Millisecond), hostTook.Round(time.Millisecond))
		diffs, volatileOnly := compareReports(before, after, in)
		if len(diffs) == 0 {
			for _, c := range after.Checks {
				t.Logf("%-10s %-7s %2d alert keys, the same in the container%s", c.Name, c.State, len(c.Alerts), errorNote(c.Error))
			}
			require.Contains(t, checkNames(after), "patches")
			require.Contains(t, checkNames(after), "mfa")
			break
		}
		if !volatileOnly || attempt == 3 {
			t.Fatalf("the container judges the host differently:\n%s", strings.Join(diffs, "\n"))
		}
		t.Logf("only cpu/memory differ, again:\n%s", strings.Join(diffs, "\n"))
	}

	t.Run("StartUp", func(t *testing.T) { testStartUp(t, ctx, pod) })
}

// testStartUp runs the image as the DaemonSet does (`run` with its flags, on
// a port of its own) and measures the time to healthy and to ready (every
// check's first run done).
func testStartUp(t *testing.T, ctx context.Context, pod func(args ...string) []string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	argv := pod("run", "--config=/etc/l2agent/agent.yaml", "--web.listen-address="+addr,
		"--path.procfs=/host/proc", "--path.sysfs=/host/sys", "--path.rootfs=/host/root")
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.Env = append(os.Environ(), "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	start := time.Now()
	require.NoError(t, cmd.Start())
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}
	}
	defer stop()
	healthy := waitHTTP(t, ctx, "http://"+addr+"/-/healthy", start, &stderr)
	ready := waitHTTP(t, ctx, "http://"+addr+"/-/ready", start, &stderr)
	t.Logf("l2agent run in the container: healthy after %s, ready (every check's first run done) after %s",
		healthy.Round(time.Millisecond), ready.Round(time.Millisecond))
	stopStart := time.Now()
	stop()
	t.Logf("stopped %s after SIGTERM", time.Since(stopStart).Round(time.Millisecond))
	require.Less(t, time.Since(stopStart), 10*time.Second, "the agent stops within 5 s of SIGTERM (terminationGracePeriodSeconds: 20)")
}

// waitHTTP polls url until it answers 200 and returns the time since start.
func waitHTTP(t *testing.T, ctx context.Context, url string, start time.Time, log *bytes.Buffer) time.Duration {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		require.NoError(t, err)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200 within 2 minutes; the agent said:\n%s", url, log.String())
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// inCgroup runs argv in a cgroup of its own in the hierarchies nspawn writes
// to (cgroup2, and the v1 name=systemd one of a hybrid host): without a
// systemd to ask, nspawn makes its payload/ and supervisor/ cgroups next to
// the one it starts in and leaves them behind. They are removed after the test.
func inCgroup(t *testing.T, argv []string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	name := fmt.Sprintf("l2agent-image-test.%d", os.Getpid())
	var dirs []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		i := slices.Index(f, "-")
		if i < 0 || i+3 >= len(f) {
			continue
		}
		if f[i+1] == "cgroup2" || f[i+1] == "cgroup" && slices.Contains(strings.Split(f[i+3], ","), "name=systemd") {
			d := filepath.Join(f[4], name)
			require.NoError(t, os.MkdirAll(d, 0o755))
			dirs = append(dirs, d)
		}
	}
	t.Cleanup(func() {
		for _, d := range dirs { // depth first: nspawn's payload/ and supervisor/ go first
			var all []string
			_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
				if err == nil && e.IsDir() {
					all = append(all, p)
				}
				return nil
			})
			for i := len(all) - 1; i >= 0; i-- {
				_ = os.Remove(all[i])
			}
		}
	})
	script := `for d in $L2AGENT_CGROUPS; do echo $$ > "$d/cgroup.procs" || exit 1; done; exec "$@"`
	return append([]string{"/usr/bin/env", "L2AGENT_CGROUPS=" + strings.Join(dirs, " "), "/bin/sh", "-c", script, "sh"}, argv...)
}

// nspawnArgv runs the image's entrypoint with args, with the DaemonSet's
// mounts and security: the host's /proc, /sys and / read-only under /host and
// its /tmp writable at /host/root/tmp, the config read-only, a state dir, a
// read-only root with a /tmp of its own, the host's network and hostname
// (hostNetwork), root with only the three capabilities the DaemonSet adds,
// and no new privileges.
func nspawnArgv(nspawn, rootfs, hostname, cfgDir, state string, args ...string) []string {
	return append([]string{nspawn, "--quiet", "--register=no", "--keep-unit", "--console=pipe",
		"--kill-signal=SIGTERM", "--resolv-conf=off", "--directory=" + rootfs, "--read-only", "--tmpfs=/tmp",
		"--hostname=" + hostname,
		"--bind-ro=/proc:/host/proc", "--bind-ro=/sys:/host/sys", "--bind-ro=/:/host/root", "--bind=/tmp:/host/root/tmp",
		"--bind-ro=" + cfgDir + ":/etc/l2agent", "--bind=" + state + ":/var/lib/l2agent",
		"--drop-capability=" + strings.Join(dropCaps, ","), "--no-new-privileges=yes",
		"--", "/usr/bin/l2agent"}, args...)
}

// dropCaps are the capabilities to drop for the DaemonSet's set (drop ALL, add
// DAC_READ_SEARCH, SYS_PTRACE, SYS_CHROOT): nspawn's --drop-capability=all
// would also drop the ones --capability adds back.
var dropCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
	"CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_PACCT", "CAP_SYS_ADMIN",
	"CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"}

// report is what `l2agent check --json` prints, the parts compared.
type report struct {
	Checks []struct {
		Name, State, Error string
		Alerts             []struct{ Key, State string }
	}
}

func runCheck(t *testing.T, ctx context.Context, argv []string) (report, time.Duration) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1")
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) { // a non-zero exit is a finding, not a failure
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, stderr.String())
	}
	var r report
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &r), "%s\nstdout: %s\nstderr: %s", strings.Join(argv, " "), stdout.String(), stderr.String())
	return r, took
}

// volatile are the checks whose values are measured over time: two runs a
// second apart may differ.
var volatile = []string{"cpu", "memory"}

// states are the verdicts of a report: each check's state (with whether it
// failed) and each alert key's state, by "check key".
func (r report) states() map[string]string {
	m := map[string]string{}
	for _, c := range r.Checks {
		m[c.Name+" (the check)"] = fmt.Sprintf("%s, error %t", c.State, c.Error != "")
		for _, a := range c.Alerts {
			m[c.Name+" "+a.Key] = a.State
		}
	}
	return m
}

// compareReports lists the verdicts of the container that are neither the
// host's before nor after it ran ("absent" where a report lacks a key), and
// whether they are all in volatile checks.
func compareReports(before, after, pod report) (diffs []string, volatileOnly bool) {
	b, a, p := before.states(), after.states(), pod.states()
	keys := map[string]bool{}
	for _, m := range []map[string]string{b, a, p} {
		for k := range m {
			keys[k] = true
		}
	}
	state := func(m map[string]string, k string) string {
		if s, ok := m[k]; ok {
			return s
		}
		return "absent"
	}
	volatileOnly = true
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if ps := state(p, k); ps != state(b, k) && ps != state(a, k) {
			diffs = append(diffs, fmt.Sprintf("%s: %s in the container, %s on the host (%s after)", k, ps, state(b, k), state(a, k)))
			check, _, _ := strings.Cut(k, " ")
			// A key absent from one host run came or went meanwhile (a
			// mount of another test): in flux like cpu and memory values.
			inFlux := state(b, k) == "absent" || state(a, k) == "absent"
			volatileOnly = volatileOnly && (inFlux || slices.Contains(volatile, check))
		}
	}
	return diffs, volatileOnly
}

func checkNames(r report) []string {
	var names []string
	for _, c := range r.Checks {
		names = append(names, c.Name)
	}
	return names
}

func errorNote(err string) string {
	if err == "" {
		return ""
	}
	return " (error on both: " + err + ")"
}

// configMapAgentYAML is agent.yaml of deploy/kubernetes/configmap.yaml.
func configMapAgentYAML(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../kubernetes/configmap.yaml")
	require.NoError(t, err)
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	require.NoError(t, yaml.Unmarshal(b, &cm))
	require.NotEmpty(t, cm.Data["agent.yaml"])
	return cm.Data["agent.yaml"]
}

// unpackImage extracts the layers of the image archive at path into dir, in
// order, with their owners and modes (as root).
func unpackImage(t *testing.T, path, dir string) {
	t.Helper()
	img := readArchiveIndex(t, path)
	for _, layer := range img.layers {
		zr, err := gzip.NewReader(bytes.NewReader(layer))
		require.NoError(t, err)
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			require.NoError(t, extract(dir, h, tr), h.Name)
		}
	}
}

func extract(dir string, h *tar.Header, r io.Reader) error {
	name := filepath.Clean(h.Name)
	if strings.HasPrefix(name, "..") || strings.Contains(name, ".wh.") {
		return fmt.Errorf("unexpected entry %q", h.Name)
	}
	p := filepath.Join(dir, name)
	switch h.Typeflag {
	case tar.TypeDir:
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
	case tar.TypeReg:
		os.Remove(p)
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, r)
		if err = errors.Join(err, f.Close()); err != nil {
			return err
		}
	case tar.TypeSymlink:
		os.Remove(p)
		return errors.Join(os.Symlink(h.Linkname, p), os.Lchown(p, h.Uid, h.Gid))
	case tar.TypeLink:
		os.Remove(p)
		return os.Link(filepath.Join(dir, filepath.Clean(h.Linkname)), p)
	default:
		return fmt.Errorf("entry %q of type %c", h.Name, h.Typeflag)
	}
	// The raw mode keeps setuid and sticky bits (os.FileMode would move them).
	return errors.Join(os.Lchown(p, h.Uid, h.Gid), syscall.Chmod(p, uint32(h.Mode&0o7777)))
}

// readArchiveIndex reads the layers of an image archive, following
// index.json to the manifest.
type imageLayers struct{ layers [][]byte }

func readArchiveIndex(t *testing.T, path string) imageLayers {
	t.Helper()
	a := readArchive(t, path)
	var index struct{ Manifests []struct{ Digest string } }
	require.NoError(t, json.Unmarshal(a.files["index.json"], &index))
	require.Len(t, index.Manifests, 1)
	var man struct{ Layers []struct{ Digest string } }
	require.NoError(t, json.Unmarshal(a.blob(t, index.Manifests[0].Digest), &man))
	var img imageLayers
	for _, l := range man.Layers {
		img.layers = append(img.layers, a.blob(t, l.Digest))
	}
	return img
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true: the image test must run as root (mmdebstrap, systemd-nspawn)")
	}
	t.Skip("needs root: mmdebstrap makes the base and systemd-nspawn runs the image")
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: %s is not installed (deploy/testenv/install.sh image)", name)
	}
	t.Skipf("%s is not installed (deploy/testenv/install.sh image installs it)", name)
	return ""
}
