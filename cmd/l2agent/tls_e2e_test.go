package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/l2agent/l2agent/deploy/testenv"
)

// writeCA makes a CA and a server certificate for 127.0.0.1 in dir and
// returns the paths of the CA, the certificate and its key.
func writeCA(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "l2agent test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600))
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", der), write("server.key", "EC PRIVATE KEY", keyDER)
}

// TestTLSBasicAuth: with --web.config.file the agent serves /metrics over TLS
// with basic auth; a real Prometheus scrapes it with the right password and
// is refused with a wrong one.
func TestTLSBasicAuth(t *testing.T) {
	testenv.Need(t, "prometheus")
	dir := t.TempDir()
	caFile, certFile, keyFile := writeCA(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	require.NoError(t, err)
	webCfg := filepath.Join(dir, "web.yml")
	require.NoError(t, os.WriteFile(webCfg, []byte(fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  prom: %s\n", certFile, keyFile, hash)), 0o600))
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("state_dir: "+dir+"\nchecks: [{name: memory, kind: memory}]\n"), 0o600))

	port := testenv.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(binary, "run", "--config", cfg, "--web.listen-address="+addr, "--web.config.file="+webCfg)
	out, err := os.Create(filepath.Join(dir, "agent.log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
			t.Logf("agent log:\n%s", b)
		}
	})

	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(caFile)
	require.NoError(t, err)
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	status := func(user, pass string) int {
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/metrics", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			return -1
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Eventually(t, func() bool { return status("prom", "s3cret") == 200 }, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, http.StatusUnauthorized, status("prom", "wrong"))
	require.Equal(t, http.StatusUnauthorized, status("", ""))
	resp, err := http.Get("http://" + addr + "/metrics")
	if err == nil {
		resp.Body.Close()
		require.NotEqual(t, 200, resp.StatusCode, "no plain HTTP")
	}

	auth := func(pass string) string {
		return fmt.Sprintf("scheme: https\ntls_config: {ca_file: %q}\nbasic_auth: {username: prom, password: %q}", caFile, pass)
	}
	prom := testenv.StartPrometheusJobs(t, []testenv.Job{
		{Name: "l2agent", Targets: []string{addr}, Extra: auth("s3cret")},
		{Name: "wrongpass", Targets: []string{addr}, Extra: auth("wrong")},
	}, time.Second)
	prom.WaitFor(t, `up{job="l2agent"}`, 30*time.Second, func(s []testenv.Sample) bool { return len(s) == 1 && s[0].Value == 1 })
	prom.WaitFor(t, `up{job="wrongpass"}`, 30*time.Second, func(s []testenv.Sample) bool { return len(s) == 1 && s[0].Value == 0 })
	prom.WaitFor(t, `l2agent_memory_available_ratio{job="l2agent"}`, 30*time.Second, func(s []testenv.Sample) bool { return len(s) == 1 })
}

func TestBadWebConfigIsRefused(t *testing.T) {
	dir := t.TempDir()
	webCfg := filepath.Join(dir, "web.yml")
	require.NoError(t, os.WriteFile(webCfg, []byte("tls_server_config:\n  cert_file: /nonexistent.pem\n  key_file: /nonexistent.key\n"), 0o600))
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("state_dir: "+dir+"\nchecks: [{name: memory, kind: memory}]\n"), 0o600))
	cmd := exec.Command(binary, "run", "--config", cfg, fmt.Sprintf("--web.listen-address=127.0.0.1:%d", testenv.FreePort(t)), "--web.config.file="+webCfg)
	out, _ := cmd.CombinedOutput()
	require.Equal(t, 1, cmd.ProcessState.ExitCode(), "%s", out)
	require.Contains(t, string(out), "web config")
}
