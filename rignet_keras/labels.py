"""The label values every part of the package agrees on."""

# The void label: pixels marked with it (object boundaries, padding, unlabelled regions) count in
# no loss, no metric and no confusion matrix.
IGNORE_LABEL = 255
