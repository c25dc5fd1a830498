-- Every current answer is in fct_question_responses, and nothing else is: one pass over
-- the staging view of question_responses (the costliest relation to compute). An answer in
-- staging (its last change not a delete) is current when its response and its question
-- exist too, as int_question_responses_scored says: the answers of a deleted response are
-- not current. Fails with each missing or extra answer.
with

staged as (
    select
        answers.response_id,
        answers.question_id
    from {{ ref('stg_replica__question_responses') }} as answers
    inner join (select distinct response_id from {{ ref('stg_replica__survey_responses') }}) as responses
        on answers.response_id = responses.response_id
    inner join (select distinct question_id from {{ ref('int_questions_mapped') }}) as questions
        on answers.question_id = questions.question_id
),

fact as (
    select
        response_id,
        question_id
    from {{ ref('fct_question_responses') }}
),

final as (
    select
        coalesce(staged.response_id, fact.response_id) as response_id,
        coalesce(staged.question_id, fact.question_id) as question_id,
        case
            when fact.response_id is null then 'current answer missing from fct_question_responses'
            else 'answer in fct_question_responses that is not current'
        end as problem
    from staged
    full outer join fact
        on staged.response_id = fact.response_id and staged.question_id = fact.question_id
    where staged.response_id is null or fact.response_id is null
)

select * from final
