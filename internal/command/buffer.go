package command

// Buffer keeps at most Max bytes of what is written to it: the first ones,
// or with Tail set the last ones. Writes never fail, so a command is never
// stopped by a full buffer. Not safe for concurrent writers; os/exec uses
// one writer when Stdout and Stderr are the same Buffer.
type Buffer struct {
	Max  int
	Tail bool
	b    []byte
	cut  bool
}

func (b *Buffer) Write(p []byte) (int, error) {
	if len(b.b)+len(p) > b.Max {
		b.cut = true
	}
	if !b.Tail {
		room := max(b.Max-len(b.b), 0)
		b.b = append(b.b, p[:min(len(p), room)]...)
		return len(p), nil
	}
	b.b = append(b.b, p...)
	if len(b.b) > 2*b.Max { // compact now and then, not on every write
		b.b = append(b.b[:0], b.b[len(b.b)-b.Max:]...)
	}
	return len(p), nil
}

// Bytes returns what is kept.
func (b *Buffer) Bytes() []byte {
	if b.Tail && len(b.b) > b.Max {
		return b.b[len(b.b)-b.Max:]
	}
	return b.b
}

// String returns what is kept.
func (b *Buffer) String() string { return string(b.Bytes()) }

// Cut reports whether bytes were dropped.
func (b *Buffer) Cut() bool { return b.cut }
