package diskcleanup

import (
	"strings"
	"syscall"
	"testing"
)

func TestParseFdinfoFlags(t *testing.T) {
	for in, want := range map[string]int64{
		"pos:\t0\nflags:\t0100001\nmnt_id:\t29\n": 0o100001,
		"flags:\t02100000\n":                      0o2100000,
	} {
		got, ok := parseFdinfoFlags(strings.NewReader(in))
		if !ok || got != want {
			t.Fatalf("%q: %o %v, want %o", in, got, ok, want)
		}
	}
	if got, _ := parseFdinfoFlags(strings.NewReader("flags:\t0100001\n")); got&syscall.O_ACCMODE == syscall.O_RDONLY {
		t.Fatal("O_WRONLY read as read-only")
	}
	for _, bad := range []string{"", "pos: 0\n", "flags: 9\n", "flags:\n"} {
		if _, ok := parseFdinfoFlags(strings.NewReader(bad)); ok {
			t.Fatalf("%q parsed", bad)
		}
	}
}

func FuzzParseFdinfoFlags(f *testing.F) {
	f.Add("pos:\t0\nflags:\t0100001\nmnt_id:\t29\n")
	f.Add("flags:\t-1\n")
	f.Fuzz(func(t *testing.T, s string) {
		if _, ok := parseFdinfoFlags(strings.NewReader(s)); ok && !strings.Contains(s, "flags:") {
			t.Fatalf("flags from %q", s)
		}
	})
}
