-- Deeper questions: each couple's place in the deck, the answers to the current question
-- (hidden from the partner until both answered), and the revealed questions.
CREATE TABLE question_progress (
    couple_id TEXT PRIMARY KEY REFERENCES couples (id),
    position BIGINT NOT NULL,
    paused BIGINT NOT NULL,
    paused_by TEXT,
    answer_a TEXT,
    answer_b TEXT,
    updated_at_us BIGINT NOT NULL
);

CREATE TABLE question_answers (
    couple_id TEXT NOT NULL REFERENCES couples (id),
    position BIGINT NOT NULL,
    answer_a TEXT,
    answer_b TEXT,
    revealed_at_us BIGINT NOT NULL,
    PRIMARY KEY (couple_id, position)
);
