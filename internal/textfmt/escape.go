package textfmt

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Names read from the host (paths, device names, user names, process names
// and command lines, package names) are data: whatever bytes they hold, they
// must not start a line, end one, move a cursor or change a colour where
// they are shown. The functions below escape a name for the medium it goes
// to. Each keeps printable text (letters, marks, numbers, punctuation,
// symbols and the ASCII space) as it is and writes everything else visibly:
// \n, \r, \t, \\ for the backslash itself, \xHH for other C0 bytes, DEL and
// bytes that are not UTF-8, \uHHHH for C1 controls (NEL is \u0085), other
// spaces (NBSP is \u00a0), line and paragraph separators (U+2028, U+2029),
// format characters (bidi overrides, zero-width) and anything else unicode
// does not call printable. ESC[2J thus shows as \x1b[2J and clears nothing.
//
// Logs: slog's text handler quotes any value holding a space, a
// non-printable rune or invalid UTF-8 (only DEL passes raw, which moves no
// cursor), so a name stays inside its record. Its JSON handler escapes C0
// controls, U+2028 and U+2029 but passes DEL, C1 controls (NEL, the 8-bit
// CSI) and bidi overrides raw, valid JSON that a terminal showing the log
// may still act on: the agent's JSON log handler escapes those as \uXXXX
// (cmd/l2agent, jsonSafe), so that the value still decodes exactly.

// Line escapes s for one line: nothing in the result ends the line or is a
// control character.
func Line(s string) string {
	if !needsEscape(s, false) {
		return s
	}
	var b strings.Builder
	writeEscaped(&b, s, false)
	return b.String()
}

// Block escapes a text of several lines: '\n' stays the line separator, a
// tab stays a tab and a backslash stays a backslash (the text is usually
// made by the agent, with names already escaped by Line, which must not be
// escaped twice); everything else that Line escapes is escaped, so no other
// character (CR, NEL, U+2028, a vertical tab) can start a line and no
// escape sequence passes.
func Block(s string) string {
	if !needsEscape(s, true) {
		return s
	}
	var b strings.Builder
	writeEscaped(&b, s, true)
	return b.String()
}

// TicketTitle escapes a name for a ticket's title: one line, no control
// character, no escape sequence.
func TicketTitle(s string) string { return Line(s) }

// TicketField escapes a name for the value of one "Key: value" line of a
// ticket's text: it cannot end the line, so it cannot forge the next one.
func TicketField(s string) string { return Line(s) }

// TicketText escapes a multi-line text (diagnostics, a plan, a command's
// output) for a ticket; the caller prefixes every line it returns, so a
// name cannot start a line of its own ("Resolved: ...").
func TicketText(s string) string { return Block(s) }

// TerminalCell escapes a name for one cell of a table printed on a
// terminal: no line break, no tab (it would shift the columns), no escape
// sequence.
func TerminalCell(s string) string { return Line(s) }

// TerminalText escapes a multi-line text printed on a terminal.
func TerminalText(s string) string { return Block(s) }

// needsEscape reports whether s holds anything Line (or Block when block is
// set) would change.
func needsEscape(s string, block bool) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == '\\' && !block || (c < 0x20 || c == 0x7f) && !(block && (c == '\n' || c == '\t')) {
				return true
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || !unicode.IsPrint(r) {
			return true
		}
		i += n
	}
	return false
}

func writeEscaped(b *strings.Builder, s string, block bool) {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x` + hex2(s[i]))
		case block && (r == '\n' || r == '\t' || r == '\\'):
			b.WriteRune(r)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x` + hex2(byte(r)))
		case r < utf8.RuneSelf || unicode.IsPrint(r):
			b.WriteString(s[i : i+n])
		case r <= 0xffff:
			b.WriteString(`\u` + pad(strconv.FormatInt(int64(r), 16), 4))
		default:
			b.WriteString(`\U` + pad(strconv.FormatInt(int64(r), 16), 8))
		}
		i += n
	}
}

func hex2(c byte) string { return pad(strconv.FormatInt(int64(c), 16), 2) }

func pad(s string, n int) string { return strings.Repeat("0", max(n-len(s), 0)) + s }
