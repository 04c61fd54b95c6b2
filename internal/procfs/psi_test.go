package procfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParsePSI(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     PSI
		err      string
	}{
		{
			name: "memory",
			in:   "some avg10=0.00 avg60=1.23 avg300=0.38 total=2896458\nfull avg10=0.00 avg60=0.12 avg300=0.14 total=1607222\n",
			want: PSI{Some: PSILine{Avg60: 1.23, Avg300: 0.38, Total: 2896458}, Full: &PSILine{Avg60: 0.12, Avg300: 0.14, Total: 1607222}},
		},
		{
			name: "cpu before 5.13 has no full",
			in:   "some avg10=62.31 avg60=34.73 avg300=15.33 total=65256896\n",
			want: PSI{Some: PSILine{Avg10: 62.31, Avg60: 34.73, Avg300: 15.33, Total: 65256896}},
		},
		{
			name: "unknown keys and line kinds are ignored",
			in:   "some avg10=1 avg60=2 avg300=3 avg900=4 total=5\nother x\n",
			want: PSI{Some: PSILine{Avg10: 1, Avg60: 2, Avg300: 3, Total: 5}},
		},
		{name: "empty", in: "", err: `no "some" line`},
		{name: "full only", in: "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", err: `no "some" line`},
		{name: "missing total", in: "some avg10=0.00 avg60=0.00 avg300=0.00\n", err: "want avg10"},
		{name: "not key=value", in: "some avg10 0.00\n", err: "want key=value"},
		{name: "bad number", in: "some avg10=x avg60=0 avg300=0 total=0\n", err: "avg10: bad value"},
		{name: "negative", in: "some avg10=-1 avg60=0 avg300=0 total=0\n", err: "avg10: bad value"},
		{name: "NaN", in: "some avg10=0 avg60=NaN avg300=0 total=0\n", err: "avg60: bad value"},
		{name: "bad total", in: "some avg10=0 avg60=0 avg300=0 total=-3\n", err: "total"},
		{name: "bad full", in: "some avg10=0 avg60=0 avg300=0 total=0\nfull avg10=0\n", err: "full line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePSI(strings.NewReader(tc.in))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestReadPSI(t *testing.T) {
	t.Parallel()
	p, ok, err := ReadPSI("testdata/procfs", "io")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 0.32, p.Some.Avg60)
	require.NotNil(t, p.Full)
	require.Equal(t, 0.12, p.Full.Avg60)

	dir := t.TempDir()
	_, ok, err = ReadPSI(dir, "memory")
	require.NoError(t, err, "no PSI (before Linux 4.20) is not an error")
	require.False(t, ok)

	require.NoError(t, os.MkdirAll(filepath.Join(dir, "pressure"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pressure", "io"), []byte("some avg10=oops\n"), 0o644))
	_, _, err = ReadPSI(dir, "io")
	require.ErrorContains(t, err, filepath.Join(dir, "pressure", "io"))
}

func FuzzParsePSI(f *testing.F) {
	b, err := os.ReadFile("testdata/procfs/pressure/io")
	require.NoError(f, err)
	f.Add(string(b))
	f.Add("some avg10=62.31 avg60=34.73 avg300=15.33 total=65256896\n") // cpu before 5.13
	f.Add("some avg10=1e309 avg60=0 avg300=0 total=18446744073709551616\n")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePSI(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, l := range []*PSILine{&p.Some, p.Full} {
			if l != nil && (l.Avg10 < 0 || l.Avg60 < 0 || l.Avg300 < 0) {
				t.Fatalf("negative average from %q: %+v", s, *l)
			}
		}
	})
}
