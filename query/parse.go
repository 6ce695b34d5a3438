package query

import "fmt"

// ParseError is the error of the parsers of this package. Offset is a byte
// offset into Query.
type ParseError struct {
	Query  string
	Offset int
	Msg    string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("parse %q: %s (at offset %d)", e.Query, e.Msg, e.Offset)
}

// maxDepth bounds the nesting of groups and negations, so that a hostile
// query cannot exhaust the stack of the parser or of Bleve.
const maxDepth = 100
