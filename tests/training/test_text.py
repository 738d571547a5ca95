from training.text import hashed_ngrams, ngrams, normalise


def test_it_folds_full_width_case_and_spaces() -> None:
    assert normalise("  ＨＥＬＬＯ，\u3000Ｗｏｒｌｄ１２３  ") == "hello, world123"


def test_it_uses_char_grams_for_chinese_and_word_grams_for_english() -> None:
    grams = ngrams("退货 refund please")
    assert {"退", "退货", "<ref", "<refu", "w:refund", "b:refund please"} <= set(grams)


def test_it_hashes_stably() -> None:
    assert hashed_ngrams("hello 你好", 2**20) == hashed_ngrams("ｈｅｌｌｏ 你好", 2**20)
