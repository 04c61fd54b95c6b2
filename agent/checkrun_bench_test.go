package agent

import (
	"context"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/internal/testkit"
)

// BenchmarkCheckRun: one scheduled run of each 30 s check of the embedded
// default on this host, through the whole pipeline (run, evaluate, persist,
// publish), each in a new goroutine as the scheduler starts it; and the
// check's Run alone, to see what the pipeline adds.
func BenchmarkCheckRun(b *testing.B) {
	dir := b.TempDir()
	cfg := regexp.MustCompile(`(?m)^state_dir:.*$`).ReplaceAll(configs.DefaultYAML, []byte("state_dir: "+dir))
	p := filepath.Join(dir, "agent.yaml")
	require.NoError(b, writeFile(p, string(cfg)))
	a, err := New(Options{ConfigFile: p, Logger: testkit.QuietLogger()})
	require.NoError(b, err)
	for _, name := range []string{"disk", "cpu", "memory"} {
		var r *runner
		for _, x := range a.runners {
			if x.cfg.Name == name {
				r = x
			}
		}
		require.NotNil(b, r, name)
		a.RunCheck(a.ctx, r) // the first run (the cpu check's waits a second)
		b.Run(name+"/pipeline", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				done := make(chan struct{})
				go func() { a.RunCheck(a.ctx, r); close(done) }()
				<-done
			}
		})
		b.Run(name+"/run", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				done := make(chan struct{})
				go func() { r.check.Run(context.Background()); close(done) }()
				<-done
			}
		})
	}
}
