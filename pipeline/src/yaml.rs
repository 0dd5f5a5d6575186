//! YAML text to a tree whose every node knows its line and column, with limits on size, depth and alias expansion.
