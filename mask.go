package gantry

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
)

// MaskedSecret replaces a secret value in text that leaves Gantry.
const MaskedSecret = "[secret]"

// minSecret is the shortest value masked: shorter ones would mangle
// unrelated output without hiding anything worth hiding.
const minSecret = 4

// Masker hides secret values in text that Gantry did not write itself (a
// hook's output, an instance's log lines) before that text reaches an
// error, a journal step, an event or a record. It is the one place where
// masking is decided, so that hooks and instance logs hide the same forms.
// The zero Masker masks nothing.
type Masker struct{ r *strings.Replacer }

// NewMasker masks the values of secrets (names are not secret and are
// ignored), and the forms a program commonly prints them in: URL-encoded
// (query and path), JSON-escaped, and the password of a URL's user info on
// its own, as database drivers print it in their errors.
func NewMasker(secrets map[string]string) Masker {
	seen := map[string]bool{}
	var forms []string
	add := func(v string) {
		if len(v) >= minSecret && !seen[v] {
			seen[v] = true
			forms = append(forms, v)
		}
	}
	for _, v := range secrets {
		for _, f := range secretForms(v) {
			add(f)
		}
		if u, err := url.Parse(v); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok {
				for _, f := range secretForms(p) {
					add(f)
				}
				// As a URL re-encoded by url.URL.String writes it, which is
				// how a derived URL (DATABASE_URL with a search_path) shows it.
				add(strings.TrimPrefix(url.UserPassword("u", p).String(), "u:"))
			}
		}
	}
	if len(forms) == 0 {
		return Masker{}
	}
	// Longest first, so that a secret containing another is masked whole.
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, MaskedSecret)
	}
	return Masker{strings.NewReplacer(pairs...)}
}

// secretForms is v as it may appear in output: raw, URL-encoded and
// JSON-escaped (duplicates are dropped by the caller).
func secretForms(v string) []string {
	forms := []string{v, url.QueryEscape(v), url.PathEscape(v)}
	if b, err := json.Marshal(v); err == nil && len(b) >= 2 {
		forms = append(forms, string(b[1:len(b)-1]))
	}
	return forms
}

// Mask returns s with every secret form replaced by MaskedSecret.
func (m Masker) Mask(s string) string {
	if m.r == nil {
		return s
	}
	return m.r.Replace(s)
}
