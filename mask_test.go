package gantry_test

import (
	"testing"

	"github.com/gantry-dev/gantry"
)

func TestMasker(t *testing.T) {
	m := gantry.NewMasker(map[string]string{
		"DATABASE_URL": "postgres://app:pa%20ss%2Fw%C3%B6rd@db:5432/shop",
		"API_KEY":      "k3y-\"quoted\"&more",
		"SHORT":        "abc",
		"OTHER_URL":    "postgres://app:a%20b%3Bcdef@db/shop",
	})
	for _, tt := range []struct{ in, want string }{
		{"url=postgres://app:pa%20ss%2Fw%C3%B6rd@db:5432/shop", "url=[secret]"},
		{"escaped postgres%3A%2F%2Fapp%3Apa%2520ss%252Fw%25C3%25B6rd%40db%3A5432%2Fshop", "escaped [secret]"},
		{`FATAL: password "pa ss/wörd" rejected`, `FATAL: password "[secret]" rejected`},
		{"postgres://app:pa%20ss%2Fw%C3%B6rd@db:5432/shop?options=x", "[secret]?options=x"},
		{"dsn user=app password=pa+ss%2Fw%C3%B6rd", "dsn user=app password=[secret]"},
		{"derived postgres://app:a%20b;cdef@db/shop?search_path=v2", "derived postgres://app:[secret]@db/shop?search_path=v2"},
		{`{"key":"k3y-\"quoted\"\u0026more"}`, `{"key":"[secret]"}`},
		{"k3y-%22quoted%22&more", "[secret]"},
		{"abc is too short to mask", "abc is too short to mask"},
	} {
		if got := m.Mask(tt.in); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := (gantry.Masker{}).Mask("anything"); got != "anything" {
		t.Errorf("zero Masker changed its input: %q", got)
	}
}
