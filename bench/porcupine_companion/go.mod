module clew/bench/porcupine_companion

go 1.19

require github.com/anishathalye/porcupine v0.0.0

// Porcupine has no dependencies; point this at a checkout of its source to build offline:
//   go mod edit -replace github.com/anishathalye/porcupine=/path/to/porcupine
replace github.com/anishathalye/porcupine => ../../build/porcupine
