package trigger

import (
	"fmt"
	"strings"
	"testing"
)

// TestChanges: a moved or new branch is a push, a vanished one a deletion;
// an unchanged one is nothing.
func TestChanges(t *testing.T) {
	old := map[string]string{"main": "a1", "releases/1.0": "b1", "gone": "c1"}
	heads := map[string]string{"main": "a2", "releases/1.0": "b1", "new": "d1"}
	var got []string
	for _, ev := range changes(old, heads) {
		got = append(got, fmt.Sprintf("%s@%s deleted=%t id=%s", ev.Branch, ev.Commit, ev.Deleted, ev.Delivery))
	}
	want := "[main@a2 deleted=false id=main@a2 new@d1 deleted=false id=new@d1 gone@ deleted=true id=gone@deleted]"
	if fmt.Sprint(got) != want {
		t.Errorf("changes:\ngot  %v\nwant %s", got, want)
	}
}

func TestPreviewDatabaseURL(t *testing.T) {
	got, err := previewDatabaseURL("postgres://u:p@127.0.0.1:5432/hello_test?sslmode=disable", "mr-7")
	if want := "postgres://u:p@127.0.0.1:5432/hello_test_mr_7?sslmode=disable"; err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	if _, err := previewDatabaseURL("postgres://u:secret@host/", "mr-7"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("a URL without a database: err %v, want one that does not repeat the URL", err)
	}
}
