package lazyre

import "testing"

func TestLazy(t *testing.T) {
	r := New(`^(a+)(b*)$`)
	if r.String() != `^(a+)(b*)$` {
		t.Errorf("String() = %q", r.String())
	}
	if !r.MatchString("aab") || r.MatchString("ba") || !r.Match([]byte("a")) {
		t.Error("MatchString/Match disagree with the expression")
	}
	if m := r.FindStringSubmatch("aabb"); len(m) != 3 || m[1] != "aa" || m[2] != "bb" {
		t.Errorf("FindStringSubmatch = %q", m)
	}
	if got := New(`b+`).ReplaceAllString("abba", "-"); got != "a-a" {
		t.Errorf("ReplaceAllString = %q", got)
	}
	first := r.Regexp()
	if again := r.Regexp(); again != first {
		t.Error("compiled twice")
	}
}

func TestBadExpressionPanicsOnFirstUse(t *testing.T) {
	r := New(`(`) // no panic here: nothing is compiled yet
	defer func() {
		if recover() == nil {
			t.Error("a bad expression did not panic on first use")
		}
	}()
	r.MatchString("x")
}
