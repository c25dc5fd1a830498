-- Scored values on the canonical scale (1 to the question's scale points), and a score
-- exactly on the substantive answers, per scale: one pass over the answers mapped to an
-- item. Fails with the scale and what is wrong.
with

per_scale as (
    select
        questions.scale_points,
        count(*) as answers,
        min(answers.scored_value) as min_scored_value,
        max(answers.scored_value) as max_scored_value,
        sum(case when answers.is_substantive and answers.scored_value is null then 1 else 0 end)
            as substantive_without_score,
        sum(case when not answers.is_substantive and answers.scored_value is not null then 1 else 0 end)
            as scored_but_not_substantive
    from {{ ref('fct_question_responses') }} as answers
    inner join {{ ref('dim_questions') }} as questions on answers.question_id = questions.question_id
    where answers.canonical_item_id is not null
    group by questions.scale_points
),

final as (
    select *
    from per_scale
    where min_scored_value < 1
        or max_scored_value > scale_points
        or substantive_without_score > 0
        or scored_but_not_substantive > 0
)

select * from final
