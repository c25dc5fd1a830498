{#-
  GENERATED from orchestrate/contract.py by `python -m orchestrate.contract`: edit
  the contract there, not here. The replica-extracts contract as Snowflake column
  types, for the Snowflake loader (load_raw_from_stage, create_raw_tables): each
  table's primary key and its contract columns in contract order.
-#}
{% macro replica_contract() -%}
    {{ return({
        'districts': {
            'primary_key': ['district_id'],
            'columns': [
                ['district_id', 'varchar'],
                ['name', 'varchar'],
                ['state', 'varchar'],
                ['nces_lea_id', 'varchar'],
                ['locale', 'varchar'],
            ],
        },
        'schools': {
            'primary_key': ['school_id'],
            'columns': [
                ['school_id', 'varchar'],
                ['district_id', 'varchar'],
                ['name', 'varchar'],
                ['nces_school_id', 'varchar'],
                ['grades_served', 'varchar'],
                ['frl_percent', 'double'],
            ],
        },
        'students': {
            'primary_key': ['student_id'],
            'columns': [
                ['student_id', 'varchar'],
                ['district_id', 'varchar'],
                ['school_id', 'varchar'],
                ['local_student_id', 'varchar'],
                ['first_name', 'varchar'],
                ['last_name', 'varchar'],
                ['email', 'varchar'],
                ['birth_date', 'varchar'],
                ['grade_level', 'varchar'],
                ['gender', 'varchar'],
                ['race', 'varchar'],
                ['hispanic_latino', 'varchar'],
                ['english_learner', 'varchar'],
                ['iep', 'varchar'],
                ['section_504', 'varchar'],
                ['lunch_status', 'varchar'],
            ],
        },
        'surveys': {
            'primary_key': ['survey_id'],
            'columns': [
                ['survey_id', 'varchar'],
                ['district_id', 'varchar'],
                ['title', 'varchar'],
                ['respondent_type', 'varchar'],
                ['school_year', 'varchar'],
                ['opens_on', 'varchar'],
                ['closes_on', 'varchar'],
            ],
        },
        'survey_questions': {
            'primary_key': ['question_id'],
            'columns': [
                ['question_id', 'varchar'],
                ['survey_id', 'varchar'],
                ['position', 'bigint'],
                ['question_text', 'varchar'],
                ['response_options', 'variant'],
            ],
        },
        'survey_invitations': {
            'primary_key': ['invitation_id'],
            'columns': [
                ['invitation_id', 'varchar'],
                ['survey_id', 'varchar'],
                ['school_id', 'varchar'],
                ['student_id', 'varchar'],
            ],
        },
        'survey_responses': {
            'primary_key': ['response_id'],
            'columns': [
                ['response_id', 'varchar'],
                ['survey_id', 'varchar'],
                ['school_id', 'varchar'],
                ['student_id', 'varchar'],
                ['started_at', 'varchar'],
                ['submitted_at', 'varchar'],
            ],
        },
        'question_responses': {
            'primary_key': ['response_id', 'question_id'],
            'columns': [
                ['response_id', 'varchar'],
                ['question_id', 'varchar'],
                ['value', 'varchar'],
            ],
        },
    }) }}
{%- endmacro %}
