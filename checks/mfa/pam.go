package mfa

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// PAM return values, in the order of Linux-PAM's _pam_types.h; the index is
// the return code. pamDefault is the "default" of the bracket syntax.
var pamReturnNames = [...]string{
	"success", "open_err", "symbol_err", "service_err", "system_err", "buf_err", "perm_denied",
	"auth_err", "cred_insufficient", "authinfo_unavail", "user_unknown", "maxtries", "new_authtok_reqd",
	"acct_expired", "session_err", "cred_unavail", "cred_expired", "cred_err", "no_module_data",
	"conv_err", "authtok_err", "authtok_recover_err", "authtok_lock_busy", "authtok_disable_aging",
	"try_again", "ignore", "abort", "authtok_expired", "module_unknown", "bad_item", "conv_again",
	"incomplete", "default",
}

const (
	pamSuccess       = 0
	pamPermDenied    = 6 // what a broken line returns (PAM_MUST_FAIL_CODE)
	pamAuthErr       = 7
	pamNewAuthtok    = 12
	pamIgnore        = 25
	pamModuleUnknown = 28
	pamIncomplete    = 31
	pamNumReturns    = 32 // _PAM_RETURN_VALUES; pamReturnNames[32] is "default"

	// pamMaxIncludeLevel is PAM_SUBSTACK_MAX_LEVEL: deeper includes fail.
	pamMaxIncludeLevel = 16
	// pamMaxEntries and pamMaxFiles bound a flattened stack: include loops
	// are bounded by the level already, these bound wide fan-outs.
	pamMaxEntries = 1000
	pamMaxFiles   = 256
)

// pamAction is what a return value makes the stack do, encoded as libpam
// does: a positive value is a jump over that many modules.
type pamAction int

const (
	pamActIgnore pamAction = 0
	pamActOK     pamAction = -1
	pamActDone   pamAction = -2
	pamActBad    pamAction = -3
	pamActDie    pamAction = -4
	pamActReset  pamAction = -5
	pamActUndef  pamAction = -6
)

var pamActionNames = [...]string{"ignore", "ok", "done", "bad", "die", "reset"}

func (a pamAction) String() string {
	if a > 0 {
		return strconv.Itoa(int(a))
	}
	if -a < pamAction(len(pamActionNames)) {
		return pamActionNames[-a]
	}
	return "undef"
}

// pamEntry is one handler of an auth stack, as libpam builds it.
type pamEntry struct {
	File    string // the service file it was read from
	Line    int    // first physical line of the logical line
	Text    string // the line as written, comments removed
	Level   int    // substack depth
	Kind    pamEntryKind
	Module  string // as written
	Name    string // base name without .so, e.g. pam_unix
	Args    []string
	Actions [pamNumReturns]pamAction
	Path    string // the module file found; "" when it is not on disk
	MFA     bool   // a second-factor module
	// Optional is the argument (nullok, ...) that lets users without a
	// factor through an MFA module; "" if none.
	Optional string
}

type pamEntryKind int

const (
	pamModule   pamEntryKind = iota
	pamSubstack              // placeholder before the entries of a substack; skipped when run
	pamMustFail              // a broken line or a missing include: always fails
)

func (e *pamEntry) where() string { return fmt.Sprintf("%s:%d", e.File, e.Line) }

// pamStack is the auth stack of one PAM service.
type pamStack struct {
	Service string
	File    string // the service file, or "other" when the service has none
	Entries []pamEntry
	Notes   []string // problems found while reading (unreadable includes, ...)
	files   int      // files read
	// lastAuth is the last line of the service's own file that put entries
	// in the stack (an auth line, an include): where an MFA line belongs.
	lastAuth *pamEntry
}

// pamLoader reads service files the way libpam does.
type pamLoader struct {
	dir          string   // the pam.d directory, already under the rootfs
	rootfs       string   // for absolute include paths and module dirs
	moduleDirs   []string // globs, not yet under the rootfs
	mfaModules   []string
	optionalArgs []string
	open         func(name string) (io.ReadCloser, error)
	moduleFound  map[string]string // module as written → file found ("" if none)
	searchDirs   []string          // moduleDirs expanded under the rootfs, once per loader
	searched     bool
}

func newPAMLoader(dir, rootfs string, moduleDirs, mfaModules, optionalArgs []string) *pamLoader {
	return &pamLoader{
		dir: dir, rootfs: rootfs, moduleDirs: moduleDirs, mfaModules: mfaModules, optionalArgs: optionalArgs,
		open:        func(name string) (io.ReadCloser, error) { return os.Open(name) },
		moduleFound: map[string]string{},
	}
}

// errPAMServiceMissing says the service has no file of its own.
var errPAMServiceMissing = errors.New("no PAM service file")

// authStack returns the auth stack of service. Like libpam, a service without
// a file, or whose file has no auth line, uses the "other" service's stack.
// It returns errPAMServiceMissing (wrapped) when neither file exists.
func (l *pamLoader) authStack(service string) (*pamStack, error) {
	st := &pamStack{Service: service, File: l.path(service)}
	err := l.load(st, service, 0, 0)
	if err == nil && len(st.Entries) > 0 {
		return st, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	other := &pamStack{Service: service, File: l.path("other")}
	if err != nil {
		other.Notes = append(other.Notes, fmt.Sprintf("%s does not exist: PAM uses the \"other\" service", st.File))
	} else {
		other.Notes = append(other.Notes, fmt.Sprintf("%s has no auth line: PAM uses the \"other\" service", st.File))
	}
	if oerr := l.load(other, "other", 0, 0); oerr != nil {
		if errors.Is(oerr, fs.ErrNotExist) && err != nil {
			return nil, fmt.Errorf("%w for %s: %s and %s do not exist", errPAMServiceMissing, service, st.File, other.File)
		}
		return nil, oerr
	}
	return other, nil
}

func (l *pamLoader) path(name string) string {
	if filepath.IsAbs(name) {
		return filepath.Join(l.rootfs, name)
	}
	return filepath.Join(l.dir, name)
}

// load appends the auth entries of the service file name to st.
func (l *pamLoader) load(st *pamStack, name string, level, includeLevel int) error {
	if includeLevel >= pamMaxIncludeLevel {
		return fmt.Errorf("%s: more than %d levels of includes", name, pamMaxIncludeLevel)
	}
	path := l.path(name)
	if st.files++; st.files > pamMaxFiles {
		return fmt.Errorf("%s: more than %d files included", path, pamMaxFiles)
	}
	lines, err := l.readLines(path)
	if err != nil {
		return err
	}
	for _, ln := range lines {
		if len(st.Entries) >= pamMaxEntries {
			return fmt.Errorf("%s: more than %d auth entries", path, pamMaxEntries)
		}
		e := pamEntry{File: path, Line: ln.line, Text: ln.text, Level: level}
		n := len(st.Entries)
		l.loadLine(st, e, ln.tokens, includeLevel)
		if includeLevel == 0 && len(st.Entries) > n {
			st.lastAuth = &e
		}
	}
	return nil
}

// readLines reads the logical lines of the service file at path.
func (l *pamLoader) readLines(path string) ([]pamLine, error) {
	f, err := l.open(path)
	if err != nil {
		return nil, fmt.Errorf("read PAM config: %w", err)
	}
	defer f.Close()
	lines, err := parsePAMLines(f)
	if err != nil {
		return nil, fmt.Errorf("read PAM config %s: %w", path, err)
	}
	return lines, nil
}

// loadLine appends to st what the line e (tokens tok) puts in the auth
// stack: nothing for the other types, the entries of an included file or a
// substack, a module, or, for a line libpam cannot use, an entry that always
// fails.
func (l *pamLoader) loadLine(st *pamStack, e pamEntry, tok []string, includeLevel int) {
	mustFail := func() {
		e.Kind, e.Actions = pamMustFail, pamAllActions(pamActBad)
		st.Entries = append(st.Entries, e)
	}
	if strings.EqualFold(tok[0], "@include") { // Debian: the whole file, here
		if len(tok) < 2 {
			mustFail()
			return
		}
		l.include(st, e, tok[1], e.Level, includeLevel)
		return
	}
	switch strings.ToLower(strings.TrimPrefix(tok[0], "-")) {
	case "auth":
	case "account", "session", "password":
		return
	default: // libpam installs a bad type in the requested stack, failing
		mustFail()
		return
	}
	if len(tok) < 2 {
		mustFail()
		return
	}
	var include, substack bool
	e.Actions, include, substack = pamLineControl(tok[1])
	switch {
	case len(tok) < 3:
		mustFail()
	case include:
		sub := e.Level
		if substack {
			e.Kind, e.Module = pamSubstack, tok[2]
			st.Entries = append(st.Entries, e)
			sub++
		}
		l.include(st, e, tok[2], sub, includeLevel)
	default:
		st.Entries = append(st.Entries, l.module(e, tok[2], tok[3:]))
	}
}

// pamLineControl returns the actions of a control field, or whether it
// includes a file (include) or a substack (substack) instead.
func pamLineControl(control string) (acts [pamNumReturns]pamAction, include, substack bool) {
	switch strings.ToLower(control) {
	case "required":
		return pamControlActions(pamActBad, map[int]pamAction{pamSuccess: pamActOK, pamNewAuthtok: pamActOK, pamIgnore: pamActIgnore}), false, false
	case "requisite":
		return pamControlActions(pamActDie, map[int]pamAction{pamSuccess: pamActOK, pamNewAuthtok: pamActOK, pamIgnore: pamActIgnore}), false, false
	case "optional":
		return pamControlActions(pamActIgnore, map[int]pamAction{pamSuccess: pamActOK, pamNewAuthtok: pamActOK}), false, false
	case "sufficient":
		return pamControlActions(pamActIgnore, map[int]pamAction{pamSuccess: pamActDone, pamNewAuthtok: pamActDone}), false, false
	case "include":
		return acts, true, false
	case "substack":
		return acts, true, true
	default:
		return parsePAMControl(control), false, false
	}
}

// include appends the entries of the file name, read in place of the line
// e; a file that cannot be read makes e a line that always fails, with a
// note saying why.
func (l *pamLoader) include(st *pamStack, e pamEntry, name string, level, includeLevel int) {
	if err := l.load(st, name, level, includeLevel+1); err != nil {
		st.Notes = append(st.Notes, fmt.Sprintf("%s: %v: that line always fails", e.where(), err))
		e.Kind, e.Module, e.Actions = pamMustFail, "", pamAllActions(pamActBad)
		st.Entries = append(st.Entries, e)
	}
}

// module returns e as the entry of module mod with its arguments.
func (l *pamLoader) module(e pamEntry, mod string, args []string) pamEntry {
	e.Module, e.Args = mod, args
	e.Name = strings.TrimSuffix(filepath.Base(e.Module), ".so")
	e.Path = l.findModule(e.Module)
	e.MFA = slices.Contains(l.mfaModules, e.Name)
	if e.MFA {
		for _, a := range e.Args {
			if slices.Contains(l.optionalArgs, a) {
				e.Optional = a
				break
			}
		}
	}
	return e
}

// findModule returns the file of a module as written in a PAM line, or "".
func (l *pamLoader) findModule(mod string) string {
	if p, ok := l.moduleFound[mod]; ok {
		return p
	}
	found := ""
	regular := func(p string) bool {
		fi, err := os.Stat(p)
		return err == nil && fi.Mode().IsRegular()
	}
	if filepath.IsAbs(mod) {
		if p := filepath.Join(l.rootfs, mod); regular(p) {
			found = p
		}
	} else if !strings.Contains(mod, "..") {
		for _, m := range l.moduleSearchDirs() {
			if p := filepath.Join(m, mod); regular(p) {
				found = p
				break
			}
		}
	}
	l.moduleFound[mod] = found
	return found
}

// moduleSearchDirs expands the module dirs' globs under the rootfs, in
// order (the matches of each glob sorted), once per loader: a glob such as
// /usr/lib/*-linux-gnu/security reads all of /usr/lib, which cost more than
// the rest of a check run when it was done again for every module.
func (l *pamLoader) moduleSearchDirs() []string {
	if !l.searched {
		for _, d := range l.moduleDirs {
			matches, _ := filepath.Glob(filepath.Join(l.rootfs, d))
			slices.Sort(matches)
			l.searchDirs = append(l.searchDirs, matches...)
		}
		l.searched = true
	}
	return l.searchDirs
}

func pamAllActions(a pamAction) (acts [pamNumReturns]pamAction) {
	for i := range acts {
		acts[i] = a
	}
	return acts
}

// pamControlActions sets the given actions and def for every other value.
func pamControlActions(def pamAction, set map[int]pamAction) [pamNumReturns]pamAction {
	acts := pamAllActions(def)
	for v, a := range set {
		acts[v] = a
	}
	return acts
}

// parsePAMControl parses the bracket syntax [value=action ...] as libpam's
// _pam_parse_control does: values and actions are matched by prefix, a jump
// is a number, "default" sets the values not yet set, and values left unset
// are bad. A syntax error makes every value bad.
func parsePAMControl(s string) [pamNumReturns]pamAction {
	acts := pamAllActions(pamActUndef)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	bad := pamAllActions(pamActBad)
	for s = strings.TrimLeft(s, " \t\n"); s != ""; s = strings.TrimLeft(s, " \t\n") {
		ret := -1
		for i, name := range pamReturnNames {
			if strings.HasPrefix(s, name) {
				ret = i
				s = s[len(name):]
				break
			}
		}
		if ret < 0 || s == "" {
			return bad
		}
		s = strings.TrimLeft(s, " \t\n")
		if !strings.HasPrefix(s, "=") {
			return bad
		}
		s = strings.TrimLeft(s[1:], " \t\n")
		act := pamActUndef
		for i, name := range pamActionNames {
			if strings.HasPrefix(s, name) {
				act, s = pamAction(-i), s[len(name):]
				break
			}
		}
		if act == pamActUndef {
			n := 0
			for n < len(s) && s[n] >= '0' && s[n] <= '9' {
				n++
			}
			if n == 0 {
				return bad
			}
			v, err := strconv.Atoi(s[:n])
			if err != nil || v > pamMaxEntries {
				return bad
			}
			act, s = pamAction(v), s[n:]
		}
		if ret == pamNumReturns { // default
			for i := range acts {
				if acts[i] == pamActUndef {
					acts[i] = act
				}
			}
		} else {
			acts[ret] = act
		}
	}
	for i := range acts {
		if acts[i] == pamActUndef {
			acts[i] = pamActBad
		}
	}
	return acts
}

// pamLine is one logical line of a PAM service file.
type pamLine struct {
	line   int
	text   string
	tokens []string // type (or @include), control, module, args...
}

// parsePAMLines splits a service file into logical lines as libpam's
// _pam_line_assemble does: '#' starts a comment anywhere, a backslash at the
// end of a line (before any comment) continues it. Tokens are separated by
// blanks; a token starting with '[' runs to the next ']', and an argument may
// hold blanks inside [...] with \] for a literal ']'.
func parsePAMLines(r io.Reader) ([]pamLine, error) {
	var out []pamLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	var cur strings.Builder
	start := 0
	for n := 1; sc.Scan(); n++ {
		s := sc.Text()
		if cur.Len() == 0 {
			start = n
		}
		comment := strings.IndexByte(s, '#')
		if comment >= 0 {
			s = s[:comment]
		}
		t := strings.TrimRight(s, " \t\r")
		if comment < 0 && strings.HasSuffix(t, `\`) {
			cur.WriteString(strings.TrimLeft(t[:len(t)-1], " \t"))
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(strings.TrimLeft(t, " \t"))
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			continue
		}
		if toks := tokenizePAMLine(text); len(toks) > 0 {
			out = append(out, pamLine{line: start, text: strings.Join(strings.Fields(text), " "), tokens: toks})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if text := strings.TrimSpace(cur.String()); text != "" { // a continuation at the end of the file
		if toks := tokenizePAMLine(text); len(toks) > 0 {
			out = append(out, pamLine{line: start, text: text, tokens: toks})
		}
	}
	return out, nil
}

func tokenizePAMLine(s string) []string {
	var toks []string
	for {
		s = strings.TrimLeft(s, " \t\r\n")
		if s == "" {
			return toks
		}
		if len(toks) == 1 && s[0] == '[' { // the control field
			end := strings.IndexByte(s, ']')
			if end < 0 {
				toks = append(toks, s)
				return toks
			}
			toks = append(toks, s[:end+1])
			s = s[end+1:]
			continue
		}
		// an argument: blanks inside [...] do not split; \] is a literal ]
		var b strings.Builder
		depth := false
		i := 0
		for ; i < len(s); i++ {
			c := s[i]
			if !depth && (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
				break
			}
			switch {
			case c == '[' && !depth:
				depth = true
				continue
			case c == '\\' && depth && i+1 < len(s) && s[i+1] == ']':
				b.WriteByte(']')
				i++
				continue
			case c == ']' && depth:
				depth = false
				continue
			}
			b.WriteByte(c)
		}
		if len(toks) < 2 { // type and control keep their brackets
			toks = append(toks, s[:i])
		} else {
			toks = append(toks, b.String())
		}
		s = s[i:]
	}
}

// pamStep is one module run on a path through a stack.
type pamStep struct {
	Entry  int
	Return int
	Action pamAction
}

// pamBypass looks for a way through the auth stack that succeeds while no
// MFA module succeeds: every MFA module fails (or, with an optional argument
// such as nullok, lets the user through), every other module may return
// anything it can. It follows libpam's _pam_dispatch_aux, and returns the
// first such path, or nil when there is none.
func pamBypass(entries []pamEntry) []pamStep {
	return pamSearch(entries, pamWithoutMFA)
}

// pamMode is what a search of the runs of a stack lets the modules return.
type pamMode int

const (
	// pamWithoutMFA: every MFA module fails (or, with an optional argument,
	// lets the user through); the others may return anything.
	pamWithoutMFA pamMode = iota
	// pamAnyOutcome: every module may return anything; a missing one
	// returns module_unknown, as libpam runs it.
	pamAnyOutcome
	// pamAllPresent: as pamAnyOutcome, with every missing module installed.
	pamAllPresent
)

// pamSearch returns a run of the stack that succeeds with the modules
// returning what mode allows, or nil when there is none.
func pamSearch(entries []pamEntry, mode pamMode) []pamStep {
	w := pamWalk{entries: entries, visited: map[pamState]bool{}, mode: mode}
	if w.walk(pamState{}) {
		return w.path
	}
	return nil
}

// pamState is where a run of an auth stack is: the entry to run next, and
// the impression and status libpam keeps.
type pamState struct {
	pc, prevLevel int
	imp           int8 // -1 negative, 0 undefined, 1 positive
	status        int8
	subs          [pamMaxIncludeLevel + 1][2]int8 // impression and status at entry of each substack level
}

// pamWalk is a depth-first search of the runs of a stack.
type pamWalk struct {
	entries []pamEntry
	visited map[pamState]bool
	path    []pamStep // the run so far
	mode    pamMode
}

// walk tells whether some run from s succeeds; w.path then holds it.
func (w *pamWalk) walk(s pamState) bool {
	if w.visited[s] {
		return false
	}
	w.visited[s] = true
	if s.pc >= len(w.entries) {
		return s.imp == 1 && s.status == pamSuccess
	}
	e := &w.entries[s.pc]
	level := min(e.Level, pamMaxIncludeLevel)
	if s.prevLevel < level {
		s.subs[level] = [2]int8{s.imp, s.status}
	}
	if e.Kind == pamSubstack {
		n := s
		n.pc, n.prevLevel = s.pc+1, level
		return w.walk(n)
	}
	for _, ret := range pamOutcomes(e, w.mode) {
		w.path = append(w.path, pamStep{Entry: s.pc, Return: ret, Action: e.Actions[ret]})
		if w.walk(pamNext(w.entries, s, level, ret)) {
			return true
		}
		w.path = w.path[:len(w.path)-1]
	}
	return false
}

// pamNext is the state after entry s.pc (at substack level) returned ret:
// the impression and status updated by the entry's action for ret, and the
// entry to run next: the following one, the one after a jump, or the one
// after the rest of the (sub)stack when the action decides it.
func pamNext(entries []pamEntry, s pamState, level, ret int) pamState {
	e := &entries[s.pc]
	n := s
	n.prevLevel = level
	n.pc = s.pc + 1
	switch act := e.Actions[ret]; {
	case act == pamActReset:
		n.imp, n.status = s.subs[level][0], s.subs[level][1]
	case act == pamActOK || act == pamActDone:
		if n.imp == 0 || (n.imp == 1 && n.status == pamSuccess) {
			n.imp, n.status = 1, int8(ret)
		}
		if n.imp == 1 && act == pamActDone {
			n.pc = pamEndOfLevel(entries, s.pc)
		}
	case act == pamActBad || act == pamActDie:
		if n.imp != -1 {
			n.imp = -1
			n.status = int8(ret)
			if ret == pamIgnore {
				n.status = pamPermDenied
			}
		}
		if act == pamActDie {
			n.pc = pamEndOfLevel(entries, s.pc)
		}
	case act > 0:
		var ok bool
		if n.pc, ok = pamJump(entries, s.pc, int(act)); !ok { // "bad jump in stack"
			n.imp, n.status = -1, pamPermDenied
		}
	}
	return n
}

// pamJump returns the entry after jumping over n entries of the level of
// entry pc (with their substacks); ok is false when the stack ends first.
func pamJump(entries []pamEntry, pc, n int) (next int, ok bool) {
	lvl := entries[pc].Level
	i := pc
	for i+1 < len(entries) && entries[i+1].Level >= lvl && n > 0 {
		i++
		for i+1 < len(entries) && entries[i+1].Level > lvl {
			i++
		}
		n--
	}
	return i + 1, n == 0
}

// pamEndOfLevel returns the entry after the rest of the (sub)stack of entry
// pc.
func pamEndOfLevel(entries []pamEntry, pc int) int {
	i := pc
	for i+1 < len(entries) && entries[i+1].Level >= entries[pc].Level {
		i++
	}
	return i + 1
}

// pamOutcomes lists the return values worth trying for an entry: one per
// distinct (action, kind of value) among the values it can return, so that
// the search stays small.
func pamOutcomes(e *pamEntry, mode pamMode) []int {
	var can []int
	switch {
	case e.Kind == pamMustFail:
		can = []int{pamPermDenied}
	case e.Path == "" && mode != pamAllPresent:
		can = []int{pamModuleUnknown} // libpam runs a missing module as PAM_MODULE_UNKNOWN
	case e.Name == "pam_deny":
		can = []int{pamAuthErr}
	case e.Name == "pam_permit":
		can = []int{pamSuccess}
	case e.MFA && e.Optional == "" && mode == pamWithoutMFA:
		for r := range pamNumReturns {
			if r != pamSuccess && r != pamIgnore && r != pamNewAuthtok && r != pamIncomplete {
				can = append(can, r)
			}
		}
	default:
		for r := range pamNumReturns {
			if r != pamIncomplete {
				can = append(can, r)
			}
		}
	}
	type key struct {
		act  pamAction
		kind int // 0 success, 1 ignore, 2 other
	}
	seen := map[key]bool{}
	var out []int
	// auth_err first: the usual failure stands for the others of its action
	if i := slices.Index(can, pamAuthErr); i > 0 {
		can = slices.Insert(slices.Delete(can, i, i+1), 0, pamAuthErr)
	}
	for _, r := range can {
		k := key{e.Actions[r], 2}
		switch r {
		case pamSuccess:
			k.kind = 0
		case pamIgnore:
			k.kind = 1
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	return out
}

// pamVerdict is the evaluation of one auth stack.
type pamVerdict struct {
	Stack     *pamStack
	Compliant bool
	Findings  []mfaFinding
	MFA       []*pamEntry  // the MFA modules of the stack
	Lockout   []mfaFinding // findings that keep every user out (also in Findings)
}

// evalPAMStack decides whether st requires a second factor that cannot be
// skipped, and explains why not with the offending lines.
func evalPAMStack(st *pamStack, mfaModules []string) pamVerdict {
	v := pamVerdict{Stack: st}
	for i := range st.Entries {
		if e := &st.Entries[i]; e.MFA {
			v.MFA = append(v.MFA, e)
		}
	}
	if len(v.MFA) == 0 {
		f := mfaFinding{
			Where: st.File, Text: fmt.Sprintf("no MFA module in the auth stack of service %s", st.Service),
			Rule: fmt.Sprintf("the auth stack must run one of %s as required or requisite", strings.Join(mfaModules, ", ")),
		}
		if st.lastAuth != nil { // cite the line after which the MFA module belongs
			f.Where, f.Text = st.lastAuth.where(), st.lastAuth.Text
			f.Rule = fmt.Sprintf("no MFA module in the auth stack of service %s: %s, e.g. after this line", st.Service, f.Rule)
		}
		v.Findings = append(v.Findings, f)
	}
	v.Lockout = pamLockout(st)
	v.Findings = append(v.Findings, v.Lockout...)
	for _, e := range v.MFA {
		if e.Path == "" && !slices.ContainsFunc(v.Lockout, func(f mfaFinding) bool { return f.Where == e.where() }) {
			v.Findings = append(v.Findings, mfaFinding{
				Where: e.where(), Text: e.Text,
				Rule: fmt.Sprintf("the module file %s is not on disk (not found in the PAM module directories)", e.Module),
			})
		}
	}
	if len(v.MFA) > 0 && len(v.Lockout) == 0 {
		if path := pamBypass(st.Entries); path != nil {
			v.Findings = append(v.Findings, explainPAMBypass(st, path))
		}
	}
	v.Compliant = len(v.Findings) == 0
	return v
}

// lockoutRule starts the rule of a finding that keeps every user out.
const lockoutRule = "users cannot log in"

// pamLockout returns a finding for each module the stack requires that is
// not on disk, when no run of the stack can succeed because of them: libpam
// fails such a line, so nobody gets through.
func pamLockout(st *pamStack) []mfaFinding {
	if pamSearch(st.Entries, pamAnyOutcome) != nil || pamSearch(st.Entries, pamAllPresent) == nil {
		return nil // something succeeds, or the stack fails for other reasons
	}
	var missing, fatal []*pamEntry
	for i := range st.Entries {
		e := &st.Entries[i]
		if e.Kind != pamModule || e.Path != "" {
			continue
		}
		missing = append(missing, e)
		if a := e.Actions[pamModuleUnknown]; a == pamActBad || a == pamActDie {
			fatal = append(fatal, e)
		}
	}
	if len(fatal) == 0 {
		fatal = missing
	}
	var fs []mfaFinding
	for _, e := range fatal {
		fs = append(fs, mfaFinding{
			Where: e.where(), Text: e.Text,
			Rule: fmt.Sprintf("%s through PAM service %s: the module file %s is not on disk (not found in the PAM module directories), and libpam fails the stack without it", lockoutRule, st.Service, e.Module),
		})
	}
	return fs
}

// explainPAMBypass names the line that lets the stack succeed without a
// second factor, and shows the path.
func explainPAMBypass(st *pamStack, path []pamStep) mfaFinding {
	es := st.Entries
	var culprit *pamEntry
	rule := ""
	ranMFA := false
	for _, p := range path {
		e := &es[p.Entry]
		if !e.MFA {
			continue
		}
		ranMFA = true
		if e.Optional != "" && (p.Return == pamSuccess || p.Return == pamIgnore) {
			culprit = e
			rule = fmt.Sprintf("%s: users without an enrolled factor pass %s without one", e.Optional, e.Name)
			break
		}
		if p.Action != pamActBad && p.Action != pamActDie {
			culprit = e
			rule = fmt.Sprintf("control %s lets the stack go on when %s fails (%s → %s); use required or requisite", pamControlOf(e), e.Name, pamReturnNames[p.Return], p.Action)
			break
		}
	}
	if culprit == nil && !ranMFA {
		// the path skipped every MFA module: the step that ended the stack or jumped over them
		for _, p := range slices.Backward(path) {
			e := &es[p.Entry]
			if p.Action == pamActDone && (p.Return == pamSuccess || p.Return == pamNewAuthtok) {
				culprit = e
				rule = fmt.Sprintf("%s %s ends the stack with success before the MFA module runs", pamControlOf(e), e.Name)
				break
			}
			if p.Action > 0 {
				culprit = e
				rule = fmt.Sprintf("%s=%d on %s jumps over the MFA module", pamReturnNames[p.Return], p.Action, e.Name)
				break
			}
		}
	}
	if culprit == nil {
		for _, p := range slices.Backward(path) {
			if p.Action == pamActReset {
				culprit = &es[p.Entry]
				rule = fmt.Sprintf("%s=reset forgets the failure of the MFA module", pamReturnNames[p.Return])
				break
			}
		}
	}
	if culprit == nil {
		culprit = &es[path[len(path)-1].Entry]
		rule = "the stack can succeed without an MFA module succeeding"
	}
	var b strings.Builder
	b.WriteString("path: ")
	for i, p := range path {
		if i > 0 {
			b.WriteString(" → ")
		}
		e := &es[p.Entry]
		fmt.Fprintf(&b, "%s:%d %s %s=%s", filepath.Base(e.File), e.Line, cmp.Or(e.Name, "(bad line)"), pamReturnNames[p.Return], p.Action)
	}
	b.WriteString(" → success")
	return mfaFinding{Where: culprit.where(), Text: culprit.Text, Rule: "the MFA module can be skipped: " + rule, Who: b.String()}
}

// pamControlOf is the control field of an entry as written.
func pamControlOf(e *pamEntry) string {
	t := tokenizePAMLine(e.Text)
	if len(t) > 1 {
		return t[1]
	}
	return "?"
}
