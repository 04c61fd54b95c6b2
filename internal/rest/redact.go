package rest

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
)

// Redacted stands in for a credential in a server's answer quoted in an
// error (as configs.Secret marshals).
const Redacted = "<secret>"

// Redactor removes the credentials a client sends from the text of a
// server's answer before it is quoted in an error. A ticket system that
// echoes the request (its Authorization header, or the token it was given)
// in an error page would otherwise have the secret copied into the log, the
// store's dead letters and `l2agent tickets test` output.
//
// Each secret is hidden as it is sent and as a server may quote it: as it
// is, URL-escaped, JSON-escaped, and for basic auth the base64 of
// "user:password" that the Authorization header carries. The zero value
// hides nothing.
type Redactor struct {
	r *strings.Replacer // nil: no secret
}

// NewRedactor returns the redactor of a's credential and of the extra
// secrets a client sends another way (a routing key in the body).
func NewRedactor(a Auth, extra ...string) Redactor {
	var forms []string
	add := func(s string) {
		if s == "" {
			return
		}
		forms = append(forms, s, url.QueryEscape(s), url.PathEscape(s), jsonEscaped(s, true), jsonEscaped(s, false))
	}
	add(a.secret)
	if a.scheme == "basic" {
		up := []byte(a.user + ":" + a.secret)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			forms = append(forms, enc.EncodeToString(up))
		}
	}
	for _, s := range extra {
		add(s)
	}
	if len(forms) == 0 {
		return Redactor{}
	}
	// Longest first: at each position of the text the longest form wins,
	// so the base64 of "user:password" is hidden whole, not around the
	// password's own letters.
	slices.SortFunc(forms, func(a, b string) int { return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b)) })
	forms = slices.Compact(forms)
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, Redacted)
	}
	return Redactor{r: strings.NewReplacer(pairs...)}
}

// jsonEscaped is s as it appears inside a JSON string.
func jsonEscaped(s string, escapeHTML bool) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(s); err != nil {
		return s
	}
	return strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(b.String(), `"`), "\n"), `"`)
}

// String is s with every credential replaced by Redacted.
func (r Redactor) String(s string) string {
	if r.r == nil {
		return s
	}
	return r.r.Replace(s)
}

// Bytes is b with every credential replaced by Redacted; b itself is not
// changed.
func (r Redactor) Bytes(b []byte) []byte {
	if r.r == nil {
		return b
	}
	return []byte(r.r.Replace(string(b)))
}
