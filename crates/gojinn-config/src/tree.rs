//! Tokens → a tree of nodes: each node is one logical line of words, plus the
//! `{ … }` block that opens on that line, if any. Knows nothing of directives.

use crate::error::{PResult, Pos, PosError};
use crate::lexer::{Kind, Token};

/// Deepest block nesting accepted; real configs use a handful of levels, and the
/// bound keeps the recursive parsers' stack use small whatever the input.
pub(crate) const MAX_NESTING: usize = 32;

/// One line of words and its optional block.
#[derive(Debug)]
pub(crate) struct Node {
    /// The words of the line; empty for a bare `{ … }` block.
    pub(crate) words: Vec<Token>,
    /// The block opened at the end of the line.
    pub(crate) block: Option<Block>,
}

/// A `{ … }` block.
#[derive(Debug)]
pub(crate) struct Block {
    /// Where the `{` is.
    pub(crate) open: Pos,
    /// The lines inside.
    pub(crate) nodes: Vec<Node>,
}

impl Node {
    /// Position of the node: its first word, or its `{`.
    pub(crate) fn pos(&self) -> Pos {
        match (self.words.first(), &self.block) {
            (Some(w), _) => w.pos,
            (None, Some(b)) => b.open,
            (None, None) => Pos::START,
        }
    }
}

/// Builds the tree of a whole file.
pub(crate) fn parse(tokens: Vec<Token>) -> PResult<Vec<Node>> {
    let mut p = Parser {
        tokens: tokens.into_iter().peekable(),
    };
    p.nodes(0, None)
}

struct Parser {
    tokens: std::iter::Peekable<std::vec::IntoIter<Token>>,
}

impl Parser {
    /// Reads nodes until the end of the file (`open` is `None`) or the `}`
    /// closing the block opened at `open`.
    fn nodes(&mut self, depth: usize, open: Option<Pos>) -> PResult<Vec<Node>> {
        let mut nodes = Vec::new();
        loop {
            let Some(next) = self.tokens.peek() else {
                return match open {
                    Some(pos) => Err(PosError::new(
                        pos,
                        "unclosed `{`: no matching `}` before the end of the file",
                    )),
                    None => Ok(nodes),
                };
            };
            if next.kind == Kind::Close {
                let pos = next.pos;
                self.tokens.next();
                return match open {
                    Some(_) => Ok(nodes),
                    None => Err(PosError::new(pos, "unexpected `}`: no block is open")),
                };
            }
            nodes.push(self.node(depth)?);
        }
    }

    /// Reads one node; the next token is a word or a `{`.
    fn node(&mut self, depth: usize) -> PResult<Node> {
        let mut words = Vec::new();
        let mut line = None;
        while let Some(t) = self
            .tokens
            .next_if(|t| t.is_text() && line.is_none_or(|l| t.line == l))
        {
            line = Some(t.line);
            words.push(t);
        }
        let mut block = None;
        if let Some(open) = self
            .tokens
            .next_if(|t| t.kind == Kind::Open && line.is_none_or(|l| t.line == l))
        {
            if depth >= MAX_NESTING {
                return Err(PosError::new(
                    open.pos,
                    format!("blocks are nested too deeply (more than {MAX_NESTING} levels)"),
                ));
            }
            let nodes = self.nodes(depth + 1, Some(open.pos))?;
            block = Some(Block {
                open: open.pos,
                nodes,
            });
        }
        Ok(Node { words, block })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;
    use crate::lexer::lex;

    fn tree(src: &str) -> PResult<Vec<Node>> {
        parse(lex(src)?)
    }

    fn words(n: &Node) -> Vec<&str> {
        n.words.iter().map(|w| w.text.as_str()).collect()
    }

    #[test]
    fn lines_and_blocks() {
        let t = tree("{\n admin off\n}\n:8080 {\n handle /a* {\n  respond x 200\n }\n}\n").unwrap();
        assert_eq!(t.len(), 2);
        assert!(t[0].words.is_empty());
        let site = &t[1];
        assert_eq!(words(site), vec![":8080"]);
        let handle = &site.block.as_ref().unwrap().nodes[0];
        assert_eq!(words(handle), vec!["handle", "/a*"]);
        assert_eq!(
            words(&handle.block.as_ref().unwrap().nodes[0]),
            vec!["respond", "x", "200"]
        );
    }

    #[test]
    fn one_line_blocks() {
        let t = tree(":80 { respond hi }\n:81 {\n}").unwrap();
        assert_eq!(
            words(&t[0].block.as_ref().unwrap().nodes[0]),
            vec!["respond", "hi"]
        );
        assert!(t[1].block.as_ref().unwrap().nodes.is_empty());
    }

    #[test]
    fn brace_on_next_line_is_a_separate_node() {
        let t = tree("handle\n{\n}").unwrap();
        assert_eq!(t.len(), 2);
        assert!(t[0].block.is_none());
        assert!(t[1].words.is_empty() && t[1].block.is_some());
    }

    #[test]
    fn unclosed_and_stray() {
        let e = tree(":8080 {\n respond hi\n").unwrap_err();
        assert_eq!((e.pos.line, e.pos.col), (1, 7));
        assert!(e.message.starts_with("unclosed `{`"));
        let e = tree(":8080 {\n}\n}").unwrap_err();
        assert_eq!((e.pos.line, e.pos.col), (3, 1));
        assert_eq!(e.message, "unexpected `}`: no block is open");
    }

    #[test]
    fn nesting_is_bounded() {
        let src = "{ ".repeat(100_000);
        let e = tree(&src).unwrap_err();
        assert!(e.message.contains("nested too deeply"), "{}", e.message);
    }
}
