package main

import "testing"

func TestStatusProgressText(t *testing.T) {
	for _, tc := range []struct {
		l    statusLine
		want string
	}{
		{statusLine{}, ""},
		{statusLine{ToFetch: 6046, Fetched: 0}, " 0/6046 fetched"},
		{statusLine{ToFetch: 6046, Fetched: 1200, Rate: 350.4, ETASeconds: 14}, " 1200/6046 fetched, 350 msg/s, ETA 14s"},
	} {
		if got := tc.l.progressText(); got != tc.want {
			t.Errorf("progressText(%+v) = %q, want %q", tc.l, got, tc.want)
		}
	}
}
