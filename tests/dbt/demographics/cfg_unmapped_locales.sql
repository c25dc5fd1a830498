select
    district_id,
    locale_raw
from {{ ref('dim_districts') }}
where locale_raw is not null
    and locale_category = 'Unknown'
